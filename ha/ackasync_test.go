package ha_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

// acks is an ha.AckDone that hands every outcome over.
type acks chan error

func (a acks) AckDone(err error) { a <- err }

// waitAckAsync is WaitAckAsync with its outcome on a channel, whether
// decided at once or later.
func waitAckAsync(t *testing.T, srv *ha.Server, end int64, timeout time.Duration) (pending bool, out acks) {
	t.Helper()
	out = make(acks, 4)
	pending, err := srv.WaitAckAsync(end, timeout, out)
	if !pending {
		out <- err
	}
	return pending, out
}

// told returns the one outcome on a, failing on none or a second one.
func (a acks) told(t *testing.T, what string) error {
	t.Helper()
	select {
	case err := <-a:
		select {
		case again := <-a:
			t.Fatalf("%s: told twice: %v, then %v", what, err, again)
		case <-time.After(5 * time.Millisecond):
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: never told", what)
		return nil
	}
}

// TestWaitAckAsyncOutcomes: every outcome WaitAck gives, told once:
// refused at once without a slave, acknowledged at once when covered,
// held until the report covers it, failed by a fence and by Close, and
// refused after Close.
func TestWaitAckAsyncOutcomes(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	put(t, c.master, 0, 20)
	end := c.master.WrittenOffset()
	if pending, out := waitAckAsync(t, c.srv, end, time.Second); pending || !errors.Is(out.told(t, "no slave"), ha.ErrSlaveNotAvailable) {
		t.Fatal("no slave: want ErrSlaveNotAvailable at once")
	}
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	stop, _ := c.slave(slave, c.srv.Addr().String())
	defer stop()
	waitFor(t, "slave copy", caughtUp(c.master, slave))
	waitFor(t, "slave report", func() bool { return c.srv.Status().Acked >= end })
	if pending, out := waitAckAsync(t, c.srv, end, time.Second); pending || out.told(t, "covered") != nil {
		t.Fatal("covered: want nil at once")
	}

	// Held until the slave reports the new bytes.
	pending, out := waitAckAsync(t, c.srv, end+1, 20*time.Second)
	if !pending {
		t.Fatalf("beyond the log: decided at once (%v)", out.told(t, "beyond"))
	}
	put(t, c.master, 20, 21)
	if err := out.told(t, "next report"); err != nil {
		t.Fatalf("next report: %v", err)
	}

	// A fence fails a held wait and refuses new ones.
	pending, out = waitAckAsync(t, c.srv, c.master.WrittenOffset()+1, 20*time.Second)
	if !pending {
		t.Fatal("beyond the log: decided at once")
	}
	c.srv.Fence(true)
	if err := out.told(t, "fenced"); !errors.Is(err, ha.ErrFenced) {
		t.Fatalf("fenced: %v", err)
	}
	if _, out := waitAckAsync(t, c.srv, end, time.Second); !errors.Is(out.told(t, "while fenced"), ha.ErrFenced) {
		t.Fatal("while fenced: want ErrFenced")
	}
	c.srv.Fence(false)

	// Close fails a held wait and refuses new ones.
	pending, out = waitAckAsync(t, c.srv, c.master.WrittenOffset()+1, 20*time.Second)
	if !pending {
		t.Fatal("beyond the log: decided at once")
	}
	c.srv.Close()
	if err := out.told(t, "closed"); !errors.Is(err, ha.ErrSlaveNotAvailable) {
		t.Fatalf("closed: %v", err)
	}
	if pending, out := waitAckAsync(t, c.srv, end+1, time.Second); pending || !errors.Is(out.told(t, "after close"), ha.ErrSlaveNotAvailable) {
		t.Fatal("after close: want ErrSlaveNotAvailable at once")
	}
}
