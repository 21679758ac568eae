package agent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// allAckMaster is an AllAck agent, id 1, master of epoch 3 with in-sync
// set {1, 2, 3} at set epoch 5, whose controllers cannot be reached
// (every proposal's outcome is unknown).
func allAckMaster(t *testing.T) (*Agent, *fakeReplica) {
	f := &fakeReplica{}
	a, err := New(Config{Controllers: []string{freeAddr(t)}, AllAck: true, Interval: 100 * time.Millisecond,
		Timeout: time.Second, InSyncLag: time.Second, Logger: quiet}, f)
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.Lease != 0 {
		t.Fatalf("AllAck defaults to lease %v, want none", a.cfg.Lease)
	}
	a.id, a.role = 1, &Role{Master: true, Epoch: 3}
	a.info = protocol.ReplicaSetInfo{MasterID: 1, MasterEpoch: 3, SyncStateSet: []int64{1, 2, 3}, SyncStateSetEpoch: 5}
	for id := int64(1); id <= 3; id++ {
		a.info.Replicas = append(a.info.Replicas, protocol.ReplicaInfo{BrokerID: id, Alive: true, Epoch: 3})
	}
	a.fenced, a.fenceSet = false, true
	return a, f
}

func (f *fakeReplica) sync() [2][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inSync
}

func (f *fakeReplica) setStatus(st Status) {
	f.mu.Lock()
	f.status = st
	f.mu.Unlock()
}

func eq(got [2][]int64, committed, pending []int64) bool {
	return slices.Equal(got[0], committed) && slices.Equal(got[1], pending)
}

// TestAllAckShrinkOnlyOnceCommitted: a slave that stopped acknowledging is
// proposed out of the in-sync set, but the broker keeps waiting for it
// (committed ∪ proposed) while the controller has not answered; only an
// answer showing the committed shrink lets the broker stop waiting.
func TestAllAckShrinkOnlyOnceCommitted(t *testing.T) {
	a, f := allAckMaster(t)
	ctx := context.Background()
	t0 := time.Now()
	f.setStatus(Status{MaxOffset: 100, Acked: map[int64]int64{2: 100, 3: 100}})
	a.reportAllAck(ctx, t0)
	if n := len(a.props.sets); n != 0 {
		t.Fatalf("%d proposals with the set unchanged", n)
	}
	f.setStatus(Status{MaxOffset: 500, Acked: map[int64]int64{2: 500}}) // 3 lost its HA connection
	a.reportAllAck(ctx, t0.Add(1500*time.Millisecond))
	if len(a.props.sets) != 1 || !slices.Equal(a.props.sets[0].set, []int64{1, 2}) || a.props.sets[0].unknown.IsZero() {
		t.Fatalf("proposals %+v, want {1 2} with an unknown outcome", a.props.sets)
	}
	if got := f.sync(); !eq(got, []int64{2, 3}, []int64{2}) {
		t.Fatalf("broker told %v, want committed [2 3] (3 still waited for), pending [2]", got)
	}
	// A heartbeat answer at the same base, soon after: still unknown.
	a.apply(a.info, t0.Add(1600*time.Millisecond))
	if got := f.sync(); !eq(got, []int64{2, 3}, []int64{2}) {
		t.Fatalf("after a same-base answer: %v", got)
	}
	// The controller committed the shrink.
	info := a.info
	info.SyncStateSet, info.SyncStateSetEpoch = []int64{1, 2}, 6
	a.apply(info, t0.Add(1700*time.Millisecond))
	if got := f.sync(); !eq(got, []int64{2}, nil) || len(a.props.sets) != 0 {
		t.Fatalf("after the committed shrink: broker told %v, proposals %+v", got, a.props.sets)
	}
	if _, fenced, _, _ := f.get(); fenced {
		t.Fatal("an AllAck master was fenced without losing its role")
	}
}

// TestAllAckExpandCountsAtOnce: a caught-up slave is waited for from the
// moment it is proposed (before any answer), and a slave whose
// acknowledgement does not cover every acknowledged send (Confirmed) is
// not proposed at all.
func TestAllAckExpandCountsAtOnce(t *testing.T) {
	a, f := allAckMaster(t)
	a.info.SyncStateSet = []int64{1, 2}
	ctx := context.Background()
	t0 := time.Now()
	f.setStatus(Status{MaxOffset: 100, Confirmed: 90, Acked: map[int64]int64{2: 100, 3: 100}})
	a.inSync(t0) // history: the master's end 1 s before the next call
	// 3 reached where the master was InSyncLag ago but not what was
	// acknowledged since: not proposed.
	f.setStatus(Status{MaxOffset: 500, Confirmed: 400, Acked: map[int64]int64{2: 450, 3: 300}})
	a.reportAllAck(ctx, t0.Add(1500*time.Millisecond))
	if len(a.props.sets) != 0 {
		t.Fatalf("proposed %+v although slave 3 lacks acknowledged sends", a.props.sets)
	}
	if got := f.sync(); !eq(got, []int64{2}, nil) {
		t.Fatalf("broker told %v after the refused admission", got)
	}
	f.setStatus(Status{MaxOffset: 500, Confirmed: 400, Acked: map[int64]int64{2: 450, 3: 420}})
	a.reportAllAck(ctx, t0.Add(1600*time.Millisecond))
	if len(a.props.sets) != 1 || !slices.Equal(a.props.sets[0].set, []int64{1, 2, 3}) {
		t.Fatalf("proposals %+v, want {1 2 3}", a.props.sets)
	}
	if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("broker told %v, want slave 3 waited for at once", got)
	}
	// The outcome stays unknown: after Timeout with the same base the
	// proposal is given up; the broker stops waiting for 3.
	a.apply(a.info, t0.Add(1700*time.Millisecond))
	if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("proposal dropped early: %v", got)
	}
	a.apply(a.info, t0.Add(1600*time.Millisecond+a.cfg.Timeout+time.Millisecond))
	if got := f.sync(); !eq(got, []int64{2}, nil) {
		t.Fatalf("unanswered proposal kept past the timeout: %v", got)
	}
}

// TestAllAckSetBeforeSwitch: a broker made master is told its in-sync
// set before it switches, so it never acknowledges with a smaller one.
func TestAllAckSetBeforeSwitch(t *testing.T) {
	f := &fakeReplica{}
	a, err := New(Config{Controllers: []string{"h:1"}, AllAck: true, Logger: quiet}, f)
	if err != nil {
		t.Fatal(err)
	}
	a.id = 2
	a.apply(protocol.ReplicaSetInfo{MasterID: 2, MasterEpoch: 4, SyncStateSet: []int64{1, 2}, SyncStateSetEpoch: 7}, time.Now())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.switches != 1 || !f.role.Master || f.syncsAt != 1 || !eq(f.syncs[0], []int64{1}, nil) {
		t.Fatalf("role %+v after %d switches, sets %v", f.role, f.switches, f.syncs)
	}
	if f.fenced || !f.lease.IsZero() {
		t.Fatalf("AllAck master fenced=%v lease=%v", f.fenced, f.lease)
	}
}

// TestAgentAllAckQuorumLoss: with two of three controllers stopped an
// AllAck master stays unfenced (it keeps acknowledging with its whole
// in-sync set) well past the heartbeat timeout, nobody is elected, and
// the broker still waits for every committed member.
func TestAgentAllAckQuorumLoss(t *testing.T) {
	nodes, bs, m := threeBrokersAck(t, true)
	mr, _, _, _ := bs[m].fake.get()
	want := without(committed(nodes).SyncStateSet, bs[m].a.id)
	waitFor(t, 5*time.Second, "master told its set", func() bool { return eq(bs[m].fake.sync(), want, nil) })
	nodes[0].Close()
	nodes[1].Close()
	time.Sleep(3 * time.Second) // 2.5 × the heartbeat timeout
	for i, b := range bs {
		r, fenced, _, _ := b.fake.get()
		if r.Epoch != mr.Epoch || r.Master != (i == m) {
			t.Fatalf("broker %d changed role without quorum: %+v", i, r)
		}
		if i == m && fenced {
			t.Fatal("the AllAck master fenced itself on losing the controller quorum")
		}
	}
	if got := bs[m].fake.sync(); !slices.Equal(got[0], want) {
		t.Fatalf("master's committed set became %v without a quorum, was %v", got[0], want)
	}
}

// TestAgentAllAckExpandShrink: against a real controller group, AllAck
// masters propose expansions and shrinks like the 4.x path: a lagging
// slave leaves the committed set and is not elected; it rejoins once it
// catches up.
func TestAgentAllAckExpandShrink(t *testing.T) {
	nodes, bs, m := threeBrokersAck(t, true)
	lagger, good := (m+1)%3, (m+2)%3
	bs[m].fake.setOffset(500)
	bs[good].fake.setOffset(500)
	lr, _, _, _ := bs[lagger].fake.get()
	waitFor(t, 5*time.Second, "lagging slave dropped", func() bool {
		set := committed(nodes).SyncStateSet
		return len(set) == 2 && !slices.Contains(set, lr.BrokerID)
	})
	waitFor(t, 5*time.Second, "master stops waiting for it", func() bool {
		got := bs[m].fake.sync()
		return !slices.Contains(got[0], lr.BrokerID) && !slices.Contains(got[1], lr.BrokerID)
	})
	bs[lagger].fake.setOffset(500)
	waitFor(t, 5*time.Second, "caught-up slave back in sync", func() bool { return len(committed(nodes).SyncStateSet) == 3 })
	bs[m].stop()
	waitFor(t, 10*time.Second, "a new master", func() bool { return masterOf(bs, m) >= 0 })
}
