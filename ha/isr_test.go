package ha_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

// slaveID runs a replicating slave that names itself id in its hello.
func (c *cluster) slaveID(id int64) (store *engine.Store, stop func()) {
	s := open(c.t, c.t.TempDir(), engine.AsyncFlush)
	cfg := c.cfg
	cfg.BrokerID = id
	cc := &cluster{t: c.t, cfg: cfg}
	stopClient, _ := cc.slave(s, c.srv.Addr().String())
	return s, func() { stopClient(); s.Close() }
}

// waitKinds are the two ways a send waits for its slaves: a goroutine
// blocked in WaitAck, or WaitAckAsync (which must not decide these at
// once: an in-sync slave is missing).
var waitKinds = []struct {
	name  string
	start func(t *testing.T, srv *ha.Server, end int64, timeout time.Duration) chan error
}{
	{"blocking", func(_ *testing.T, srv *ha.Server, end int64, timeout time.Duration) chan error {
		return waitAsync(srv, end, timeout)
	}},
	{"async", func(t *testing.T, srv *ha.Server, end int64, timeout time.Duration) chan error {
		pending, out := waitAckAsync(t, srv, end, timeout)
		if !pending {
			t.Fatalf("a wait with an in-sync slave missing decided at once: %v", <-out)
		}
		return out
	}},
}

// oneOfTwoInSync is a cluster whose in-sync set is slaves {1, 2} (two
// needed) with only slave 1 connected, caught up after n puts; it returns
// the log end.
func oneOfTwoInSync(t *testing.T, n int) (*cluster, int64) {
	c := newCluster(t, engine.SyncFlush)
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1, 2}, MinInSync: 2})
	s1, stop1 := c.slaveID(1)
	t.Cleanup(stop1)
	put(t, c.master, 0, n)
	waitFor(t, "slave 1 copy", caughtUp(c.master, s1))
	return c, c.master.WrittenOffset()
}

// waitAsync starts a WaitAck and returns its result channel.
func waitAsync(srv *ha.Server, end int64, timeout time.Duration) chan error {
	ch := make(chan error, 1)
	go func() { ch <- srv.WaitAck(end, timeout) }()
	return ch
}

func mustBlock(t *testing.T, ch chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s: released (%v) without every in-sync slave's ack", what, err)
	case <-time.After(300 * time.Millisecond):
	}
}

func mustRelease(t *testing.T, ch chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not released", what)
	}
}

// TestAllInSyncMemberNotAckingHoldsTheSend: with in-sync set {1, 2}, slave
// 1's acknowledgement alone releases nothing (4.x would release it); the
// send is released once slave 2 connects and acknowledges too.
func TestAllInSyncMemberNotAckingHoldsTheSend(t *testing.T) {
	for _, w := range waitKinds {
		t.Run(w.name, func(t *testing.T) {
			c, end := oneOfTwoInSync(t, 20)
			if err := <-w.start(t, c.srv, end, 300*time.Millisecond); !errors.Is(err, ha.ErrSlaveTimeout) {
				t.Fatalf("slave 2 absent: %v, want ErrSlaveTimeout", err)
			}
			ch := w.start(t, c.srv, end, 20*time.Second)
			mustBlock(t, ch, "slave 2 absent")
			_, stop2 := c.slaveID(2)
			defer stop2()
			mustRelease(t, ch, "both slaves acknowledged")
			if got := c.srv.Confirmed(); got != end {
				t.Fatalf("confirmed %d, want %d", got, end)
			}
		})
	}
}

// TestAllInSyncUnionWhilePending: an expansion being proposed counts at
// once, a shrink being proposed does not count until committed; the
// committed shrink releases the waiting send.
func TestAllInSyncUnionWhilePending(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	s1, stop1 := c.slaveID(1)
	defer stop1()
	put(t, c.master, 0, 10)
	waitFor(t, "slave 1 copy", caughtUp(c.master, s1))
	// Expansion {1} → {1, 2} pending: slave 2 is waited for already.
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1}, Pending: []int64{1, 2}, MinInSync: 2})
	end := c.master.WrittenOffset()
	if err := c.srv.WaitAck(end, 300*time.Millisecond); !errors.Is(err, ha.ErrSlaveTimeout) {
		t.Fatalf("pending expansion: %v, want ErrSlaveTimeout", err)
	}
	// Shrink {1, 2} → {1} pending: slave 2 is still waited for.
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1, 2}, Pending: []int64{1}, MinInSync: 2})
	ch := waitAsync(c.srv, end, 20*time.Second)
	mustBlock(t, ch, "pending shrink")
	// The controller committed the shrink: the send is released.
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1}, MinInSync: 2})
	mustRelease(t, ch, "committed shrink")
}

// TestAllInSyncMinInSyncRefuses: an in-sync set below minInSyncReplicas
// (the master counted) refuses the send at once; a shrink below it never
// releases a waiting send; with minInSyncReplicas 1 the master alone
// acknowledges.
func TestAllInSyncMinInSyncRefuses(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	c.srv.SetSyncSet(ha.SyncSet{MinInSync: 2})
	if c.srv.EnoughInSync() {
		t.Fatal("EnoughInSync with only the master in sync and minInSyncReplicas 2")
	}
	put(t, c.master, 0, 5)
	end := c.master.WrittenOffset()
	if err := c.srv.WaitAck(end, 5*time.Second); !errors.Is(err, ha.ErrInSyncNotEnough) {
		t.Fatalf("master alone, min 2: %v, want ErrInSyncNotEnough", err)
	}
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1, 2}, MinInSync: 2})
	s1, stop1 := c.slaveID(1)
	defer stop1()
	waitFor(t, "slave 1 copy", caughtUp(c.master, s1))
	ch := waitAsync(c.srv, end, time.Second)
	mustBlock(t, ch, "slave 2 absent")
	c.srv.SetSyncSet(ha.SyncSet{MinInSync: 2}) // shrunk to the master alone
	if err := <-ch; !errors.Is(err, ha.ErrSlaveTimeout) {
		t.Fatalf("shrunk below min: %v, want ErrSlaveTimeout", err)
	}
	c.srv.SetSyncSet(ha.SyncSet{MinInSync: 1})
	if err := c.srv.WaitAck(end, time.Second); err != nil {
		t.Fatalf("master alone, min 1: %v", err)
	}
}

// TestAllInSyncBrokerRefusal: the store refuses a waiting put before
// writing it when the in-sync set is too small (Java's
// IN_SYNC_REPLICAS_NOT_ENOUGH), and the broker's adapter reports it.
func TestAllInSyncStoreRefusal(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	c.srv.SetSyncSet(ha.SyncSet{MinInSync: 2})
	c.master.SetReplicaWaiter(replicaWaiter{c.srv, time.Second})
	before := c.master.WrittenOffset()
	r := c.master.PutMessage(msg(0))
	if r.Status != engine.InSyncReplicasNotEnough || r.Err == nil || r.Err.Error() != "in-sync replicas not enough" {
		t.Fatalf("put: %v %v", r.Status, r.Err)
	}
	if c.master.WrittenOffset() != before {
		t.Fatal("a refused put was written")
	}
}

// TestAllInSyncTimedOutWaitersLeave (review finding 4): while an in-sync
// slave is missing and another is connected, every send times out; a
// timed-out send must leave the queue, or the queue (rescanned under the
// server's lock on every report) grows without bound. Blocking waits
// (WaitAck) and asynchronous ones (WaitAckAsync) alike.
func TestAllInSyncTimedOutWaitersLeave(t *testing.T) {
	for _, w := range waitKinds {
		t.Run(w.name, func(t *testing.T) {
			c, end := oneOfTwoInSync(t, 5)
			const n = 200
			// The queue stays bounded: timed-out waiters leave it, marked
			// ones compacted away in batches (O(n) for n timeouts, not
			// O(n²) under the lock).
			for round, timeout := range []time.Duration{20 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond} {
				outs := make([]chan error, n)
				for i := range outs {
					outs[i] = w.start(t, c.srv, end, timeout)
				}
				for i, out := range outs {
					if err := <-out; !errors.Is(err, ha.ErrSlaveTimeout) {
						t.Fatalf("round %d send %d: %v, want ErrSlaveTimeout", round, i, err)
					}
				}
				time.Sleep(5 * time.Millisecond) // a second telling would land now
				for i, out := range outs {
					if len(out) != 0 {
						t.Fatalf("round %d send %d told twice: then %v", round, i, <-out)
					}
				}
				if round == 0 {
					if w := c.srv.Waiting(); w != 0 {
						t.Fatalf("%d timed-out sends still waiting", w)
					}
				}
				if q := c.srv.Queued(); q > n {
					t.Fatalf("round %d: %d waiters queued after %d timed out", round, q, n)
				}
			}
			// A wait behind the timed-out ones is released, once, when
			// the missing slave acknowledges.
			ch := w.start(t, c.srv, end, 20*time.Second)
			_, stop2 := c.slaveID(2)
			defer stop2()
			mustRelease(t, ch, "both slaves acknowledged")
			time.Sleep(5 * time.Millisecond)
			if len(ch) != 0 {
				t.Fatalf("released wait told twice: then %v", <-ch)
			}
		})
	}
}

// TestAllInSyncConfirmOffset: ConfirmOffset (the dispatch limit of an
// all-in-sync master) is unbounded under the 4.x rule and for a master
// with no slave to wait for, 0 while an in-sync slave has no connection,
// and what every in-sync slave acknowledged once all have; OnConfirm
// tells when it rose.
func TestAllInSyncConfirmOffset(t *testing.T) {
	const unbounded = 1<<63 - 1
	c := newCluster(t, engine.SyncFlush)
	if got := c.srv.ConfirmOffset(); got != unbounded {
		t.Fatalf("4.x rule: %d", got)
	}
	var rose atomic.Int32
	c.srv.SetSyncSet(ha.SyncSet{MinInSync: 1, OnConfirm: func() { rose.Add(1) }})
	if got := c.srv.ConfirmOffset(); got != unbounded {
		t.Fatalf("lone master: %d", got)
	}
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1, 2}, MinInSync: 2, OnConfirm: func() { rose.Add(1) }})
	s1, stop1 := c.slaveID(1)
	defer stop1()
	put(t, c.master, 0, 20)
	waitFor(t, "slave 1 copy", caughtUp(c.master, s1))
	if got := c.srv.ConfirmOffset(); got != 0 {
		t.Fatalf("slave 2 absent: %d", got)
	}
	before := rose.Load()
	s2, stop2 := c.slaveID(2)
	defer stop2()
	waitFor(t, "slave 2 copy", caughtUp(c.master, s2))
	end := c.master.WrittenOffset()
	waitFor(t, "confirm offset at the log end", func() bool { return c.srv.ConfirmOffset() == end })
	if rose.Load() == before {
		t.Fatal("OnConfirm not called as the confirm offset rose")
	}
}

// TestAllInSyncReconnectingSlaveBestLink: a slave that reconnects may
// briefly have two links; its acknowledgement is the higher of the two
// (the old link's bytes are in its log), so a fresh link starting from a
// lower offset does not pull the confirm offset back, and once the old
// link is gone the new one counts alone.
func TestAllInSyncReconnectingSlaveBestLink(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	c.srv.SetSyncSet(ha.SyncSet{Committed: []int64{1}, MinInSync: 2})
	s1, stop1 := c.slaveID(1)
	put(t, c.master, 0, 200)
	end := c.master.WrittenOffset()
	waitFor(t, "slave 1 copy", caughtUp(c.master, s1))
	waitFor(t, "confirm offset at the log end", func() bool { return c.srv.ConfirmOffset() == end })
	s1b, stop1b := c.slaveID(1) // a second link for id 1, from an empty log
	defer stop1b()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !caughtUp(c.master, s1b)() {
		if got := c.srv.ConfirmOffset(); got < end {
			t.Fatalf("confirm offset fell to %d (< %d) when a second link of slave 1 connected", got, end)
		}
		time.Sleep(time.Millisecond)
	}
	stop1()
	put(t, c.master, 200, 210)
	end = c.master.WrittenOffset()
	waitFor(t, "the new link alone confirms", func() bool { return c.srv.ConfirmOffset() == end })
	if err := c.srv.WaitAck(end, 5*time.Second); err != nil {
		t.Fatalf("send acknowledged by the new link: %v", err)
	}
}
