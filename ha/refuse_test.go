package ha_test

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/message"
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
	return statusOf(w.srv.WaitAck(end, w.timeout))
}

// asyncReplicaWaiter is the broker's adapter with its asynchronous wait
// (engine.ReplicaAsyncWaiter), mapping errors the same way.
type asyncReplicaWaiter struct{ replicaWaiter }

func (w asyncReplicaWaiter) WaitReplicaAsync(end int64, done engine.ReplicaDone) (engine.PutStatus, bool) {
	pending, err := w.srv.WaitAckAsync(end, w.timeout, ackToStatus{done})
	if pending {
		return 0, false
	}
	return statusOf(err), true
}

type ackToStatus struct{ done engine.ReplicaDone }

func (a ackToStatus) AckDone(err error) { a.done.ReplicaDone(statusOf(err)) }

func statusOf(err error) engine.PutStatus {
	switch {
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

// deferredPuts counts the asynchronous putter's puts answered later.
var deferredPuts atomic.Int64

// putDone hands an asynchronous put's result over.
type putDone chan engine.PutResult

func (c putDone) PutDone(r engine.PutResult) { c <- r }

// putter is how a test puts on a SYNC_MASTER: blocking (PutMessage and
// WaitReplica) or asynchronous (PutMessageAsync and WaitReplicaAsync,
// the broker's deferred send).
type putter struct {
	name   string
	waiter func(srv *ha.Server, timeout time.Duration) engine.ReplicaWaiter
	put    func(t *testing.T, s *engine.Store, m *message.Message) engine.PutResult
}

var putters = []putter{
	{"blocking",
		func(srv *ha.Server, timeout time.Duration) engine.ReplicaWaiter { return replicaWaiter{srv, timeout} },
		func(_ *testing.T, s *engine.Store, m *message.Message) engine.PutResult { return s.PutMessage(m) }},
	{"async",
		func(srv *ha.Server, timeout time.Duration) engine.ReplicaWaiter {
			return asyncReplicaWaiter{replicaWaiter{srv, timeout}}
		},
		func(t *testing.T, s *engine.Store, m *message.Message) engine.PutResult {
			if !s.DefersPut(true) {
				t.Fatal("a SYNC_MASTER with an asynchronous replica waiter does not defer")
			}
			done := make(putDone, 2)
			if r, now := s.PutMessageAsync(nil, m, true, done); now {
				return r
			}
			deferredPuts.Add(1)
			select {
			case r := <-done:
				select {
				case again := <-done:
					t.Fatalf("put told twice: %v, then %v", r.Status, again.Status)
				case <-time.After(time.Millisecond):
				}
				return r
			case <-time.After(30 * time.Second):
				t.Fatal("asynchronous put never answered")
				return engine.PutResult{}
			}
		}},
}

// TestSyncMasterWaitsForTheSlave runs under both flush policies (an
// ASYNC_FLUSH SYNC_MASTER waits for its slave too) and both ways of
// waiting.
func TestSyncMasterWaitsForTheSlave(t *testing.T) {
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		for _, p := range putters {
			t.Run(string(ft)+"/"+p.name, func(t *testing.T) { testSyncMaster(t, ft, p) })
		}
	}
}

func testSyncMaster(t *testing.T, ft engine.FlushDiskType, p putter) {
	c := newCluster(t, ft)
	c.master.SetReplicaWaiter(p.waiter(c.srv, 300*time.Millisecond))
	addr := c.srv.Addr().String()

	// No slave: stored, answered SLAVE_NOT_AVAILABLE.
	if r := p.put(t, c.master, msg(0)); r.Status != engine.SlaveNotAvailable {
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
	if r := p.put(t, c.master, msg(2)); r.Status != engine.FlushSlaveTimeout {
		t.Fatalf("mute slave: %v", r.Status)
	}
	conn.Close()
	waitFor(t, "mute slave to leave", func() bool { return c.srv.Status().Slaves == 0 })

	// A real slave: every acknowledged put is on the slave when it returns.
	// (A generous timeout: a loaded CI machine must not turn this into a
	// FLUSH_SLAVE_TIMEOUT.)
	c.master.SetReplicaWaiter(p.waiter(c.srv, 10*time.Second))
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	stopSlave, _ := c.slave(slave, addr)
	stop := sync.OnceFunc(stopSlave)
	defer stop()
	waitFor(t, "slave to connect", func() bool { return c.srv.Status().Slaves == 1 })
	deferredBefore := deferredPuts.Load()
	for i := 3; i < 200; i++ {
		r := p.put(t, c.master, msg(i))
		if r.Status != engine.PutOK {
			t.Fatalf("put %d: %v", i, r.Status)
		}
		if got := slave.WrittenOffset(); got < r.Offset+int64(r.Size) {
			t.Fatalf("put %d acknowledged at %d but the slave has only %d", i, r.Offset+int64(r.Size), got)
		}
		if ft == engine.SyncFlush && c.master.DurableOffset() < r.Offset+int64(r.Size) {
			t.Fatalf("put %d acknowledged before the master's own fdatasync", i)
		}
	}
	// The asynchronous puts were answered later, not blocking. Under
	// SYNC_FLUSH every one (the put's fdatasync is itself awaited later);
	// under ASYNC_FLUSH nearly every one: the master may write, stream and
	// have the slave acknowledge a put's bytes before the put asks for
	// its slave wait, which is then decided at once (seen once in CI).
	n := deferredPuts.Load() - deferredBefore
	if p.name == "async" && (ft == engine.SyncFlush && n != 197 || n < 197/2) {
		t.Fatalf("%s: %d of 197 asynchronous puts answered later", ft, n)
	}
	// The slave leaves: stored, answered SLAVE_NOT_AVAILABLE.
	stop()
	waitFor(t, "slave to leave", func() bool { return c.srv.Status().Slaves == 0 })
	if r := p.put(t, c.master, msg(200)); r.Status != engine.SlaveNotAvailable {
		t.Fatalf("slave gone: %v", r.Status)
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
