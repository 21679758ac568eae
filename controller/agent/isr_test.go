package agent

import (
	"context"
	"errors"
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
	a.info = protocol.ReplicaSetInfo{Cluster: "c", BrokerName: "b", MasterID: 1, MasterEpoch: 3, SyncStateSet: []int64{1, 2, 3}, SyncStateSetEpoch: 5}
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
	if len(a.props.sets) != 1 || !slices.Equal(a.props.sets[0].set, []int64{1, 2}) || !a.props.sets[0].unknown {
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

// scripted replaces the controller for proposals: each proposal gets the
// next answer (nil info and nil refusal: no answer).
type scripted struct {
	bodies  []protocol.AlterSyncStateSetBody
	answers []func(protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error)
}

func (s *scripted) install(a *Agent) {
	a.alterFn = func(_ context.Context, b protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error) {
		s.bodies = append(s.bodies, b)
		if len(s.answers) == 0 {
			return protocol.ReplicaSetInfo{}, nil, errors.New("scripted: no answer")
		}
		next := s.answers[0]
		s.answers = s.answers[1:]
		return next(b)
	}
}

func lost(protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error) {
	return protocol.ReplicaSetInfo{}, nil, errors.New("scripted: answer lost")
}

// refusal is a refusal of the state machine carrying the set after it.
func refusal(code int16, info protocol.ReplicaSetInfo) func(protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error) {
	return func(protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error) {
		resp := protocol.NewResponse(protocol.NewRequest(protocol.RequestControllerAlterSyncState, nil), code, "scripted")
		resp.Body = protocol.EncodeControllerJSON(info)
		return protocol.ReplicaSetInfo{}, resp, nil
	}
}

// expanding is allAckMaster with committed set {1, 2} and slave 3 caught
// up (acknowledged everything): the next report proposes {1, 2, 3}.
func expanding(t *testing.T) (*Agent, *fakeReplica, *scripted) {
	a, f := allAckMaster(t)
	a.info.SyncStateSet = []int64{1, 2}
	f.setStatus(Status{MaxOffset: 500, Confirmed: 500, Acked: map[int64]int64{2: 500, 3: 500}})
	s := &scripted{}
	s.install(a)
	return a, f, s
}

// TestAllAckFencedEpochAfterUnknown (review finding 1): an expansion's
// answer is lost (it may have committed), then the retry is refused with
// FENCED_MASTER_EPOCH: another master was elected, possibly from the
// expanded set. The master must not go on acknowledging without the
// joined slave: it fences and follows the new master at once.
func TestAllAckFencedEpochAfterUnknown(t *testing.T) {
	a, f, s := expanding(t)
	ctx := context.Background()
	t0 := time.Now()
	s.answers = append(s.answers, lost)
	a.reportAllAck(ctx, t0)
	if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("broker told %v, want slave 3 waited for", got)
	}
	newer := a.info
	newer.MasterID, newer.MasterEpoch, newer.SyncStateSet, newer.SyncStateSetEpoch = 3, 4, []int64{3}, 6
	newer.MasterAddr, newer.MasterHAAddr = "127.0.0.3:1", "127.0.0.3:2"
	s.answers = append(s.answers, refusal(protocol.ResponseControllerFencedMasterEpoch, newer))
	a.reportAllAck(ctx, t0.Add(100*time.Millisecond))
	r, fenced, _, _ := f.get()
	if !fenced || r.Master || r.Epoch != 4 || r.MasterAddr != "127.0.0.3:1" {
		t.Fatalf("after FENCED_MASTER_EPOCH: fenced=%v role %+v, want fenced and a slave of 3 at epoch 4", fenced, r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, got := range f.syncs {
		if !slices.Contains(got[0], 3) && !slices.Contains(got[1], 3) && f.switches == 0 {
			t.Fatalf("broker told %v while still master", got)
		}
	}
}

// TestAllAckInvalidMasterFences: INVALID_MASTER (the master was cleared)
// fences too, whatever was proposed before.
func TestAllAckInvalidMasterFences(t *testing.T) {
	a, f, s := expanding(t)
	cleared := a.info
	cleared.MasterID, cleared.MasterEpoch = 0, 4
	s.answers = append(s.answers, lost, refusal(protocol.ResponseControllerInvalidMaster, cleared))
	a.reportAllAck(context.Background(), time.Now())
	a.reportAllAck(context.Background(), time.Now())
	if _, fenced, _, _ := f.get(); !fenced {
		t.Fatal("a master told it is no longer master still acknowledges")
	}
}

// TestAllAckUnknownKeptUntilSealed (review finding 3): an expansion
// whose answer was lost may commit at any later time (the request may sit
// in a controller, the entry uncommitted); the broker waits for the
// joined slave until an answer of the state machine seals it, however
// long heartbeats keep answering the old set. The seal is the committed
// set itself, sent with a higher sequence number.
func TestAllAckUnknownKeptUntilSealed(t *testing.T) {
	a, f, s := expanding(t)
	ctx := context.Background()
	t0 := time.Now()
	s.answers = append(s.answers, lost)
	a.reportAllAck(ctx, t0)
	for i := 1; i <= 3; i++ { // heartbeats long past the heartbeat timeout
		a.apply(a.info, t0.Add(time.Duration(i)*10*a.cfg.Timeout))
		if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
			t.Fatalf("unanswered expansion dropped by a same-base heartbeat: %v", got)
		}
	}
	// Slave 3 is gone now: the master wants {1 2} again, the committed
	// set; it still sends it, as a seal.
	f.setStatus(Status{MaxOffset: 600, Confirmed: 500, Acked: map[int64]int64{2: 600}})
	s.answers = append(s.answers, lost)
	a.reportAllAck(ctx, t0.Add(40*a.cfg.Timeout))
	if len(s.bodies) != 2 || !slices.Equal(s.bodies[1].SyncStateSet, []int64{1, 2}) || s.bodies[1].Seq <= s.bodies[0].Seq {
		t.Fatalf("proposals sent %+v, want a seal {1 2} with a higher Seq", s.bodies)
	}
	if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("unanswered expansion dropped: %v", got)
	}
	// The seal is refused: the first attempt had committed.
	expanded := a.info
	expanded.SyncStateSet, expanded.SyncStateSetEpoch, expanded.AlterSeq = []int64{1, 2, 3}, 6, s.bodies[0].Seq
	s.answers = append(s.answers, refusal(protocol.ResponseControllerFencedSyncStateSet, expanded))
	a.reportAllAck(ctx, t0.Add(41*a.cfg.Timeout))
	if got := f.sync(); !eq(got, []int64{2, 3}, nil) {
		t.Fatalf("after the seal showed the expansion committed: broker told %v, want committed [2 3]", got)
	}
	// Had it not committed, the seal's "unchanged" resolves it away.
	b, g, s2 := expanding(t)
	s2.answers = append(s2.answers, lost, refusal(protocol.ResponseControllerAlterSyncFailed, b.info))
	b.reportAllAck(ctx, t0)
	g.setStatus(Status{MaxOffset: 600, Confirmed: 500, Acked: map[int64]int64{2: 600}})
	b.reportAllAck(ctx, t0.Add(time.Second))
	if got := g.sync(); !eq(got, []int64{2}, nil) || len(b.props.sets) != 0 {
		t.Fatalf("after an unchanged seal: broker told %v, proposals %+v", got, b.props.sets)
	}
}

// TestAllAckNotAliveRefusal: a refusal before the log (a member not
// alive) drops a proposal never sent without an answer, but not one an
// earlier attempt of which went unanswered.
func TestAllAckNotAliveRefusal(t *testing.T) {
	notAlive := func(protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error) {
		return protocol.ReplicaSetInfo{}, protocol.NewResponse(protocol.NewRequest(0, nil), protocol.ResponseControllerBrokerNotAlive, "x"), nil
	}
	a, f, s := expanding(t)
	s.answers = append(s.answers, notAlive)
	a.reportAllAck(context.Background(), time.Now())
	if got := f.sync(); !eq(got, []int64{2}, nil) {
		t.Fatalf("after a first-attempt refusal: %v", got)
	}
	b, g, s2 := expanding(t)
	s2.answers = append(s2.answers, lost, notAlive)
	b.reportAllAck(context.Background(), time.Now())
	b.reportAllAck(context.Background(), time.Now())
	if got := g.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("a possibly committed expansion dropped on a liveness refusal: %v", got)
	}
}

// TestAllAckSlowSlaveAdmitted (review finding 5): a slave always a little
// behind what was acknowledged at each instant is still admitted: the
// broker waits for it, and it joins once it reaches what was acknowledged
// when the waiting began.
func TestAllAckSlowSlaveAdmitted(t *testing.T) {
	a, f := allAckMaster(t)
	a.info.SyncStateSet = []int64{1, 2}
	s := &scripted{}
	s.install(a)
	ctx := context.Background()
	t0 := time.Now()
	a.history = []sample{{at: t0.Add(-a.cfg.InSyncLag), end: 0}} // every acknowledging slave is in sync
	f.setStatus(Status{MaxOffset: 400, Confirmed: 400, Acked: map[int64]int64{2: 400, 3: 390}})
	a.reportAllAck(ctx, t0)
	if len(s.bodies) != 0 {
		t.Fatalf("proposed %+v although slave 3 lacks acknowledged sends", s.bodies)
	}
	if got := f.sync(); !eq(got, []int64{2}, []int64{3}) {
		t.Fatalf("broker told %v, want slave 3 waited for while it joins", got)
	}
	f.setStatus(Status{MaxOffset: 430, Confirmed: 420, Acked: map[int64]int64{2: 430, 3: 410}})
	a.reportAllAck(ctx, t0.Add(100*time.Millisecond))
	if len(s.bodies) != 1 || !slices.Equal(s.bodies[0].SyncStateSet, []int64{1, 2, 3}) {
		t.Fatalf("proposals %+v, want {1 2 3} once slave 3 reached 400", s.bodies)
	}
	if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("broker told %v", got)
	}
}

// TestAllAckJoinerGivenUp: a joining slave that does not reach the floor
// within InSyncLag is no longer waited for; one far behind (below what
// was acknowledged at the previous report) is not waited for at all.
func TestAllAckJoinerGivenUp(t *testing.T) {
	a, f := allAckMaster(t)
	a.info.SyncStateSet = []int64{1, 2}
	(&scripted{}).install(a)
	ctx := context.Background()
	t0 := time.Now()
	a.history = []sample{{at: t0.Add(-a.cfg.InSyncLag), end: 0}} // every acknowledging slave is in sync
	f.setStatus(Status{MaxOffset: 400, Confirmed: 400, Acked: map[int64]int64{2: 400, 3: 390}})
	a.reportAllAck(ctx, t0)
	if got := f.sync(); !eq(got, []int64{2}, []int64{3}) {
		t.Fatalf("broker told %v", got)
	}
	t1 := t0.Add(a.joinWait() + time.Millisecond)                // far below haMaxTimeSlaveNotCatchup
	a.history = []sample{{at: t1.Add(-a.cfg.InSyncLag), end: 0}} // still in sync, still below 400
	f.setStatus(Status{MaxOffset: 420, Confirmed: 400, Acked: map[int64]int64{2: 420, 3: 399}})
	a.reportAllAck(ctx, t1)
	if got := f.sync(); !eq(got, []int64{2}, nil) {
		t.Fatalf("a joiner stuck below its floor still waited for after %v: %v", a.joinWait(), got)
	}
	// caught up again at once: held back, so a stalling slave cannot stall
	// the sends every round
	t2 := t1.Add(a.cfg.Interval)
	a.history = []sample{{at: t2.Add(-a.cfg.InSyncLag), end: 0}}
	f.setStatus(Status{MaxOffset: 440, Confirmed: 440, Acked: map[int64]int64{2: 440, 3: 440}})
	a.reportAllAck(ctx, t2)
	if got := f.sync(); !eq(got, []int64{2}, nil) {
		t.Fatalf("a slave given up joined again at once: %v", got)
	}
	t3 := t1.Add(a.cfg.InSyncLag + time.Millisecond)
	a.history = []sample{{at: t3.Add(-a.cfg.InSyncLag), end: 0}}
	f.setStatus(Status{MaxOffset: 460, Confirmed: 460, Acked: map[int64]int64{2: 460, 3: 460}})
	a.reportAllAck(ctx, t3)
	if got := f.sync(); !slices.Contains(got[1], 3) {
		t.Fatalf("a slave held back did not join again after haMaxTimeSlaveNotCatchup: %v", got)
	}
	c, g := allAckMaster(t)
	c.info.SyncStateSet = []int64{1, 2}
	(&scripted{}).install(c)
	c.prevConfirmed = 1000
	c.history = []sample{{at: t0.Add(-c.cfg.InSyncLag), end: 0}}
	g.setStatus(Status{MaxOffset: 1200, Confirmed: 1200, Acked: map[int64]int64{2: 1200, 3: 900}})
	c.reportAllAck(ctx, t0)
	if got := g.sync(); got[1] != nil {
		t.Fatalf("a slave behind the previous round waited for: %v", got)
	}
}

// TestAllAckRestartSeals: a broker made master at the first role of its
// run may have proposed at that epoch before a restart: it waits for
// every replica until an answer of the state machine seals that.
func TestAllAckRestartSeals(t *testing.T) {
	f := &fakeReplica{}
	a, err := New(Config{Controllers: []string{"h:1"}, AllAck: true, Logger: quiet}, f)
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{}
	s.install(a)
	a.id = 1
	info := protocol.ReplicaSetInfo{Cluster: "c", BrokerName: "b", MasterID: 1, MasterEpoch: 4, SyncStateSet: []int64{1, 2}, SyncStateSetEpoch: 7}
	for id := int64(1); id <= 3; id++ {
		info.Replicas = append(info.Replicas, protocol.ReplicaInfo{BrokerID: id, Alive: id != 3})
	}
	a.apply(info, time.Now())
	if got := f.sync(); !eq(got, []int64{2}, []int64{2, 3}) {
		t.Fatalf("restarted master told %v, want every replica waited for", got)
	}
	f.setStatus(Status{MaxOffset: 10, Acked: map[int64]int64{2: 10}})
	s.answers = append(s.answers, refusal(protocol.ResponseControllerAlterSyncFailed, info))
	a.reportAllAck(context.Background(), time.Now())
	if len(s.bodies) != 1 || !slices.Equal(s.bodies[0].SyncStateSet, []int64{1, 2}) {
		t.Fatalf("sent %+v, want the seal {1 2}", s.bodies)
	}
	if got := f.sync(); !eq(got, []int64{2}, nil) {
		t.Fatalf("after the seal: %v", got)
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
// slave leaves the committed set, rejoins once it catches up, and, lagging
// again, is dropped again and is not elected when the master dies.
func TestAgentAllAckExpandShrink(t *testing.T) {
	nodes, bs, m := threeBrokersAck(t, true)
	lagger, good := (m+1)%3, (m+2)%3
	lr, _, _, _ := bs[lagger].fake.get()
	gr, _, _, _ := bs[good].fake.get()
	dropped := func(end int64) {
		bs[m].fake.setOffset(end)
		bs[good].fake.setOffset(end)
		waitFor(t, 5*time.Second, "lagging slave dropped", func() bool {
			set := committed(nodes).SyncStateSet
			return len(set) == 2 && !slices.Contains(set, lr.BrokerID)
		})
		waitFor(t, 5*time.Second, "master stops waiting for it", func() bool {
			got := bs[m].fake.sync()
			return !slices.Contains(got[0], lr.BrokerID) && !slices.Contains(got[1], lr.BrokerID)
		})
	}
	dropped(500)
	bs[lagger].fake.setOffset(500)
	waitFor(t, 5*time.Second, "caught-up slave back in sync", func() bool { return len(committed(nodes).SyncStateSet) == 3 })
	dropped(900)
	bs[m].stop()
	waitFor(t, 10*time.Second, "a new master", func() bool { return masterOf(bs, m) >= 0 })
	if got := masterOf(bs, m); got != good {
		t.Fatalf("broker %d elected, want the in-sync slave %d (id %d), not the lagger", got, good, gr.BrokerID)
	}
	if set := committed(nodes).SyncStateSet; slices.Contains(set, lr.BrokerID) {
		t.Fatalf("lagging slave in the new in-sync set %v", set)
	}
}
