package ha_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

// notSynced is a slave store whose fdatasync has not completed yet: bytes
// written, DurableOffset behind (as after an AppendReplica(durable=false)
// of a burst whose last message never arrived, or while a slow fsync runs).
type notSynced struct{ *engine.Store }

func (notSynced) DurableOffset() int64 { return 0 }

// TestHelloOffsetIsNotAnAck: with AckDurable, a reconnecting slave's hello
// offset (its log end: written, not synced) must not count as an
// acknowledgement; only its reports do.
func TestHelloOffsetIsNotAnAck(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	c.cfg.AckDurable = true
	put(t, c.master, 0, 20)
	end := c.master.WrittenOffset()
	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		cl := ha.NewClient(notSynced{slave}, func() string { return c.srv.Addr().String() }, c.cfg)
		done := make(chan error, 1)
		go func() { done <- cl.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	stop := run()
	waitFor(t, "slave copy", caughtUp(c.master, slave))
	time.Sleep(300 * time.Millisecond)
	if a := c.srv.Status().Acked; a != 0 {
		t.Fatalf("first session: acked %d (expected 0: nothing durable)", a)
	}
	stop()
	waitFor(t, "disconnect", func() bool { return c.srv.Status().Slaves == 0 })
	stop = run()
	defer stop()
	waitFor(t, "reconnect", func() bool { return c.srv.Status().Slaves == 1 })
	if err := c.srv.WaitAck(end, 200*time.Millisecond); err == nil {
		t.Errorf("WaitAck(%d) released with the slave's durable offset at 0 (acked %d from its hello)", end, c.srv.Status().Acked)
	}
}

// TestLeaseBoundsAcks: after the lease deadline a master acknowledges
// nothing (new waits fail with ErrFenced, reports release nothing), without
// anyone calling Fence; a renewed lease acknowledges again.
func TestLeaseBoundsAcks(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	stop, _ := c.slave(slave, c.srv.Addr().String())
	defer stop()
	waitFor(t, "slave to connect", func() bool { return c.srv.Status().Slaves == 1 })
	put(t, c.master, 0, 5)
	end := c.master.WrittenOffset()
	if err := c.srv.WaitAck(end, 5*time.Second); err != nil {
		t.Fatalf("no lease: %v", err)
	}
	c.srv.SetLease(time.Now().Add(-time.Millisecond))
	put(t, c.master, 5, 10)
	end = c.master.WrittenOffset()
	waitFor(t, "slave copy", caughtUp(c.master, slave))
	if err := c.srv.WaitAck(end, 200*time.Millisecond); !errors.Is(err, ha.ErrFenced) {
		t.Fatalf("WaitAck past the lease: %v, want ErrFenced", err)
	}
	if a := c.srv.Status().Acked; a >= end {
		t.Fatalf("a report past the lease acknowledged %d (end %d)", a, end)
	}
	c.srv.SetLease(time.Now().Add(time.Minute))
	put(t, c.master, 10, 11)
	if err := c.srv.WaitAck(c.master.WrittenOffset(), 5*time.Second); err != nil {
		t.Fatalf("renewed lease: %v", err)
	}
}

// TestServerBatchSize: the batch a server streams in is what it was
// configured with, 256 KiB by default (the broker sizes its groups of
// SYNC_MASTER puts by it, engine.ReplicaBatcher).
func TestServerBatchSize(t *testing.T) {
	for _, c := range []struct{ set, want int }{{0, 256 << 10}, {4096, 4096}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := ha.NewServer(ln, nil, ha.Config{BatchSize: c.set, Logger: quiet})
		if got := srv.BatchSize(); got != c.want {
			t.Errorf("BatchSize %d configured: %d, want %d", c.set, got, c.want)
		}
		ln.Close()
	}
}
