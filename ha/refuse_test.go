package ha_test

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

func TestSlaveWithForeignBytesIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		master      int
		slave       func(s *engine.Store)
		wantInError string
	}{
		{"ahead", 10, func(s *engine.Store) { put(t, s, 0, 20) }, "beyond the master's end"},
		{"diverged", 40, func(s *engine.Store) {
			m := msg(0)
			m.Body = []byte("never on the master")
			if r := s.PutMessage(m); r.Status != engine.PutOK {
				t.Fatal(r.Status)
			}
		}, "diverges"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, engine.AsyncFlush)
			put(t, c.master, 0, tc.master)
			slave := open(t, t.TempDir(), engine.AsyncFlush)
			defer slave.Close()
			tc.slave(slave)
			before := slave.MaxPhysOffset()
			_, done := c.slave(slave, c.srv.Addr().String())
			select {
			case err := <-done:
				if !errors.Is(err, ha.ErrRefused) || !strings.Contains(err.Error(), tc.wantInError) {
					t.Fatalf("got %v, want a refusal mentioning %q", err, tc.wantInError)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("slave was not refused")
			}
			if slave.MaxPhysOffset() != before {
				t.Fatal("refused slave's log changed")
			}
		})
	}
}

// replicaWaiter is the broker's adapter: the SYNC_MASTER wait as a put status.
type replicaWaiter struct {
	srv     *ha.Server
	timeout time.Duration
}

func (w replicaWaiter) EnoughReplicas() bool { return w.srv.EnoughInSync() }

func (w replicaWaiter) WaitReplica(end int64) engine.PutStatus {
	switch err := w.srv.WaitAck(end, w.timeout); {
	case err == nil:
		return engine.PutOK
	case errors.Is(err, ha.ErrInSyncNotEnough):
		return engine.InSyncReplicasNotEnough
	case errors.Is(err, ha.ErrSlaveTimeout):
		return engine.FlushSlaveTimeout
	default:
		return engine.SlaveNotAvailable
	}
}

// TestSyncMasterWaitsForTheSlave runs under both flush policies: an
// ASYNC_FLUSH SYNC_MASTER waits for its slave too.
func TestSyncMasterWaitsForTheSlave(t *testing.T) {
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) { testSyncMaster(t, ft) })
	}
}

func testSyncMaster(t *testing.T, ft engine.FlushDiskType) {
	c := newCluster(t, ft)
	c.master.SetReplicaWaiter(replicaWaiter{c.srv, 300 * time.Millisecond})
	addr := c.srv.Addr().String()

	// No slave: stored, answered SLAVE_NOT_AVAILABLE.
	if r := c.master.PutMessage(msg(0)); r.Status != engine.SlaveNotAvailable {
		t.Fatalf("no slave: %v", r.Status)
	}
	// WAIT=false does not wait for the slave either.
	if r := c.master.PutMessageWait(msg(1), false); r.Status != engine.PutOK {
		t.Fatalf("no wait: %v", r.Status)
	}

	// A slave that connects but never acknowledges: FLUSH_SLAVE_TIMEOUT.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hello := make([]byte, 32)
	binary.BigEndian.PutUint32(hello, 0x4D514841)
	binary.BigEndian.PutUint32(hello[4:], 1)
	binary.BigEndian.PutUint64(hello[8:], uint64(c.master.SegmentSize()))
	conn.Write(hello) // from offset 0, no trailer
	waitFor(t, "mute slave to connect", func() bool { return c.srv.Status().Slaves == 1 })
	if r := c.master.PutMessage(msg(2)); r.Status != engine.FlushSlaveTimeout {
		t.Fatalf("mute slave: %v", r.Status)
	}
	conn.Close()
	waitFor(t, "mute slave to leave", func() bool { return c.srv.Status().Slaves == 0 })

	// A real slave: every acknowledged put is on the slave when it returns.
	// (A generous timeout: a loaded CI machine must not turn this into a
	// FLUSH_SLAVE_TIMEOUT.)
	c.master.SetReplicaWaiter(replicaWaiter{c.srv, 10 * time.Second})
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	stop, _ := c.slave(slave, addr)
	defer stop()
	waitFor(t, "slave to connect", func() bool { return c.srv.Status().Slaves == 1 })
	for i := 3; i < 200; i++ {
		r := c.master.PutMessage(msg(i))
		if r.Status != engine.PutOK {
			t.Fatalf("put %d: %v", i, r.Status)
		}
		if got := slave.WrittenOffset(); got < r.Offset+int64(r.Size) {
			t.Fatalf("put %d acknowledged at %d but the slave has only %d", i, r.Offset+int64(r.Size), got)
		}
	}
}

// TestAckDurable: with AckDurable (haSlaveAckDurable) a SYNC_MASTER put
// returns only once the slave has fdatasynced it, even when the slave's
// own policy is ASYNC_FLUSH.
func TestAckDurable(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	c.master.SetReplicaWaiter(replicaWaiter{c.srv, 10 * time.Second})
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	c.cfg.AckDurable = true
	stop, _ := c.slave(slave, c.srv.Addr().String())
	defer stop()
	waitFor(t, "slave to connect", func() bool { return c.srv.Status().Slaves == 1 })
	for i := 0; i < 50; i++ {
		r := c.master.PutMessage(msg(i))
		if r.Status != engine.PutOK {
			t.Fatalf("put %d: %v", i, r.Status)
		}
		if got := slave.DurableOffset(); got < r.Offset+int64(r.Size) {
			t.Fatalf("put %d acknowledged at %d but the slave has synced only %d", i, r.Offset+int64(r.Size), got)
		}
	}
}
