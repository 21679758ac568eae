package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// threeReplicas returns a state with replicas 1, 2, 3 of c/b registered.
func threeReplicas(t *testing.T) *State {
	t.Helper()
	s := NewState()
	for i, a := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		res := s.Apply(Op{Kind: OpRegister, Cluster: "c", Name: "b", Addr: a, HAAddr: a + "1"})
		if res.Code != 0 || res.ID != int64(i+1) {
			t.Fatalf("register %s: %+v", a, res)
		}
	}
	return s
}

func mustApply(t *testing.T, s *State, op Op) BrokerSet {
	t.Helper()
	res := s.Apply(op)
	if res.Code != 0 {
		t.Fatalf("%+v: code %d %s", op, res.Code, res.Remark)
	}
	return res.Set
}

func alive(now time.Time, ids ...int64) map[int64]Live {
	m := map[int64]Live{}
	for _, id := range ids {
		m[id] = Live{Last: now, Timeout: time.Second, MaxOffset: 100}
	}
	return m
}

func TestRegisterKeepsIDByAddress(t *testing.T) {
	s := threeReplicas(t)
	res := s.Apply(Op{Kind: OpRegister, Cluster: "c", Name: "b", Addr: "127.0.0.1:2", HAAddr: "127.0.0.1:99"})
	if res.ID != 2 || len(res.Set.Replicas) != 3 {
		t.Fatalf("re-register: %+v", res)
	}
	if r, _ := res.Set.Replica(2); r.HAAddr != "127.0.0.1:99" {
		t.Fatalf("HA address not updated: %+v", r)
	}
}

// TestElectionRule is the election rule table: each row starts from a set
// with master 1 at epoch 1 and in-sync set {1,2} (or the first election)
// and a liveness table, and wants the decided master and epoch.
func TestElectionRule(t *testing.T) {
	now := time.Now()
	type row struct {
		name      string
		first     bool // no election yet
		live      map[int64]Live
		unclean   bool
		want      int64 // new master; -1 = no op
		wantEpoch int32
	}
	best := alive(now, 2, 3)
	best[3] = Live{Last: now, Timeout: time.Second, MaxOffset: 500} // 3 is ahead but not in sync
	rows := []row{
		{name: "first election picks an alive replica", first: true, live: alive(now, 2, 3), want: 2, wantEpoch: 1},
		{name: "first election, nobody alive", first: true, live: nil, want: -1},
		{name: "master alive: no change", live: alive(now, 1, 2, 3), want: -1},
		{name: "clean: in-sync slave elected", live: alive(now, 2, 3), want: 2, wantEpoch: 2},
		{name: "clean ignores a further-ahead out-of-sync replica", live: best, want: 2, wantEpoch: 2},
		{name: "no in-sync replica alive: master cleared", live: alive(now, 3), want: 0, wantEpoch: 2},
		{name: "unclean: out-of-sync replica elected", live: alive(now, 3), unclean: true, want: 3, wantEpoch: 2},
		{name: "dead master's heartbeat expired", live: map[int64]Live{1: {Last: now.Add(-2 * time.Second), Timeout: time.Second}, 2: alive(now, 2)[2]}, want: 2, wantEpoch: 2},
		{name: "seeded entries never become candidates", live: map[int64]Live{2: {Last: now, Timeout: time.Second, Seeded: true}}, want: 0, wantEpoch: 2},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := threeReplicas(t)
			if !r.first {
				mustApply(t, s, Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 1, ExpectEpoch: 0})
				mustApply(t, s, Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{1, 2}})
			}
			bs, _ := s.Get("c", "b")
			op, ok := Decide(bs, r.live, now, r.unclean)
			if r.want == -1 {
				if ok {
					t.Fatalf("want no op, got %+v", op)
				}
				return
			}
			if !ok || op.NewMaster != r.want {
				t.Fatalf("want master %d, got %+v (ok %v)", r.want, op, ok)
			}
			got := mustApply(t, s, op)
			if got.MasterID != r.want || got.MasterEpoch != r.wantEpoch {
				t.Fatalf("after apply: master %d epoch %d, want %d/%d", got.MasterID, got.MasterEpoch, r.want, r.wantEpoch)
			}
			if r.want != 0 && !slices.Equal(got.SyncStateSet, []int64{r.want}) {
				t.Fatalf("in-sync set %v, want just the new master", got.SyncStateSet)
			}
			if r.want == 0 && !slices.Equal(got.SyncStateSet, []int64{1, 2}) {
				t.Fatalf("cleared master must keep the in-sync set (the only clean candidates): %v", got.SyncStateSet)
			}
		})
	}
}

func TestCandidateOrder(t *testing.T) {
	now := time.Now()
	s := threeReplicas(t)
	mustApply(t, s, Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 1})
	mustApply(t, s, Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{1, 2, 3}})
	bs, _ := s.Get("c", "b")
	cases := []struct {
		l2, l3 Live
		want   int64
	}{
		{Live{Epoch: 1, MaxOffset: 10}, Live{Epoch: 2, MaxOffset: 5}, 3},                          // higher epoch first
		{Live{Epoch: 1, MaxOffset: 10}, Live{Epoch: 1, MaxOffset: 5}, 2},                          // then offset
		{Live{Epoch: 1, MaxOffset: 5, Priority: 9}, Live{Epoch: 1, MaxOffset: 5, Priority: 1}, 3}, // then lower priority
		{Live{Epoch: 1, MaxOffset: 5}, Live{Epoch: 1, MaxOffset: 5}, 2},                           // then lower id
	}
	for i, c := range cases {
		c.l2.Last, c.l2.Timeout, c.l3.Last, c.l3.Timeout = now, time.Second, now, time.Second
		op, ok := Decide(bs, map[int64]Live{2: c.l2, 3: c.l3}, now, false)
		if !ok || op.NewMaster != c.want {
			t.Errorf("case %d: got %+v, want %d", i, op, c.want)
		}
	}
}

func TestFSMRefusals(t *testing.T) {
	s := threeReplicas(t)
	mustApply(t, s, Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 1})
	cases := []struct {
		op   Op
		code int16
	}{
		{Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 2, ExpectEpoch: 0}, protocol.ResponseControllerFencedMasterEpoch},
		{Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 2, ExpectEpoch: 1}, protocol.ResponseControllerElectMasterFailed},
		{Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 9, ExpectEpoch: 1}, protocol.ResponseControllerInvalidReplicas},
		{Op{Kind: OpElect, Cluster: "c", Name: "x", NewMaster: 1}, protocol.ResponseControllerInvalidRequest},
		{Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 2, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{1, 2}}, protocol.ResponseControllerInvalidMaster},
		{Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 0, SyncEpoch: 1, SyncStateSet: []int64{1, 2}}, protocol.ResponseControllerFencedMasterEpoch},
		{Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 0, SyncStateSet: []int64{1, 2}}, protocol.ResponseControllerFencedSyncStateSet},
		{Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{2}}, protocol.ResponseControllerAlterSyncFailed},
		{Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{1}}, protocol.ResponseControllerAlterSyncFailed},
		{Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{1, 7}}, protocol.ResponseControllerInvalidReplicas},
		{Op{Kind: "bogus"}, protocol.ResponseControllerInvalidRequest},
	}
	for i, c := range cases {
		before, _ := s.Get("c", "b")
		if res := s.Apply(c.op); res.Code != c.code {
			t.Errorf("case %d: code %d (%s), want %d", i, res.Code, res.Remark, c.code)
		}
		if after, _ := s.Get("c", "b"); after.MasterEpoch != before.MasterEpoch || after.SyncStateSetEpoch != before.SyncStateSetEpoch {
			t.Errorf("case %d: a refused op changed the set", i)
		}
	}
}

// TestEpochMonotonic runs many elections and clears: the master epoch
// only grows, by one per change of master.
func TestEpochMonotonic(t *testing.T) {
	s := threeReplicas(t)
	now := time.Now()
	var last int32
	for i := 0; i < 50; i++ {
		bs, _ := s.Get("c", "b")
		survivor := int64(i%3 + 1)
		op, ok := Decide(bs, alive(now, survivor), now, i%2 == 0)
		if !ok {
			continue
		}
		got := mustApply(t, s, op)
		if got.MasterEpoch != last+1 {
			t.Fatalf("step %d: epoch %d after %d", i, got.MasterEpoch, last)
		}
		last = got.MasterEpoch
	}
	if last < 10 {
		t.Fatalf("only %d elections in 50 steps", last)
	}
}

func TestSnapshotRestore(t *testing.T) {
	s := threeReplicas(t)
	mustApply(t, s, Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 1})
	mustApply(t, s, Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: 1, SyncStateSet: []int64{2, 1}})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := UnmarshalState(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Get("c", "b")
	got, _ := r.Get("c", "b")
	if got.MasterID != 1 || got.MasterEpoch != 1 || got.SyncStateSetEpoch != 2 || !slices.Equal(got.SyncStateSet, []int64{1, 2}) ||
		!slices.Equal(got.Replicas, want.Replicas) || got.NextID != 4 {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	// the restored state keeps assigning fresh ids
	if res := r.Apply(Op{Kind: OpRegister, Cluster: "c", Name: "b", Addr: "127.0.0.1:4"}); res.ID != 4 {
		t.Fatalf("id after restore: %d", res.ID)
	}
	if _, err := UnmarshalState([]byte("{")); err == nil {
		t.Fatal("a torn snapshot decoded")
	}
}

func TestRegisterBounds(t *testing.T) {
	s := NewState()
	for i := 0; i < MaxBrokerSets; i++ {
		if res := s.Apply(Op{Kind: OpRegister, Cluster: "c", Name: fmt.Sprint("b", i), Addr: "h:1"}); res.Code != 0 {
			t.Fatalf("set %d refused: %+v", i, res)
		}
	}
	if res := s.Apply(Op{Kind: OpRegister, Cluster: "c", Name: "one-more", Addr: "h:1"}); res.Code != protocol.ResponseControllerInvalidRequest {
		t.Fatalf("set beyond the bound: %+v", res)
	}
	for i := 0; i < protocol.MaxReplicasPerName-1; i++ {
		s.Apply(Op{Kind: OpRegister, Cluster: "c", Name: "b0", Addr: fmt.Sprint("h:", i+2)})
	}
	if res := s.Apply(Op{Kind: OpRegister, Cluster: "c", Name: "b0", Addr: "h:999"}); res.Code != protocol.ResponseControllerInvalidReplicas {
		t.Fatalf("replica beyond the bound: %+v", res)
	}
}

// TestAlterSeq: once the state machine applied a proposal with Seq n from
// the master, every proposal with Seq ≤ n is refused (whatever its set
// epoch), refusals carry the set, and an election starts the sequence
// afresh.
func TestAlterSeq(t *testing.T) {
	s := threeReplicas(t)
	mustApply(t, s, Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 1})
	alter := func(seq int64, epoch int32, ids ...int64) Result {
		return s.Apply(Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 1, MasterEpoch: 1, SyncEpoch: epoch, SyncStateSet: ids, Seq: seq})
	}
	// A seal: unchanged, refused, but its Seq is recorded.
	if res := alter(5, 1, 1); res.Code != protocol.ResponseControllerAlterSyncFailed || res.Set.AlterSeq != 5 || res.Set.Name != "b" {
		t.Fatalf("seal: %+v", res)
	}
	// An earlier proposal arriving late never takes effect.
	if res := alter(4, 1, 1, 2); res.Code != protocol.ResponseControllerFencedSyncStateSet || !slices.Equal(res.Set.SyncStateSet, []int64{1}) {
		t.Fatalf("late proposal: %+v", res)
	}
	if res := alter(6, 1, 1, 2); res.Code != 0 || res.Set.AlterSeq != 6 {
		t.Fatalf("next proposal: %+v", res)
	}
	// A stale master's proposal does not touch the sequence.
	if res := s.Apply(Op{Kind: OpAlterSync, Cluster: "c", Name: "b", MasterID: 2, MasterEpoch: 1, SyncEpoch: 2, SyncStateSet: []int64{1, 2, 3}, Seq: 99}); res.Code != protocol.ResponseControllerInvalidMaster || res.Set.AlterSeq != 6 {
		t.Fatalf("stale master: %+v", res)
	}
	// Seq 0 (an older broker) is not ordered.
	if res := alter(0, 2, 1, 2, 3); res.Code != 0 || res.Set.AlterSeq != 6 {
		t.Fatalf("unordered proposal: %+v", res)
	}
	if bs := mustApply(t, s, Op{Kind: OpElect, Cluster: "c", Name: "b", NewMaster: 2, ExpectEpoch: 1}); bs.AlterSeq != 0 {
		t.Fatalf("election kept the sequence %d", bs.AlterSeq)
	}
}
