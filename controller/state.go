package controller

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mqd/mqd/internal/protocol"
)

// State is the replicated metadata: per broker name (within a cluster) the
// replica set, the master, the master epoch and the in-sync set. It is
// changed only by Apply, with ops that went through the Raft log, so every
// controller holds the same State at the same log index. Not safe for
// concurrent use (the FSM adapter locks it).
type State struct {
	Sets map[string]*BrokerSet `json:"sets"` // key: setKey(cluster, name)
}

// BrokerSet is one broker name's replicas (Java's ReplicasInfoManager
// BrokerReplicaInfo + SyncStateInfo).
type BrokerSet struct {
	Cluster  string    `json:"cluster"`
	Name     string    `json:"name"`
	Replicas []Replica `json:"replicas"` // sorted by ID
	NextID   int64     `json:"nextId"`   // ids start at 1 (Java: GET_NEXT_BROKER_ID)
	// MasterID is the elected master's id; 0 means none (no replica yet,
	// or the master died with no in-sync replica to take over).
	MasterID          int64   `json:"masterId"`
	MasterEpoch       int32   `json:"masterEpoch"`
	SyncStateSet      []int64 `json:"syncStateSet"` // sorted; contains MasterID when MasterID != 0
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
	// AlterSeq is the highest Op.Seq applied from MasterID at MasterEpoch
	// (reset by every election): a proposal at or below it is refused, so
	// once the state machine answered a proposal every earlier one from
	// that master either shows in the state or never takes effect
	// (controller/agent/isr.go).
	AlterSeq int64 `json:"alterSeq,omitempty"`
}

// Replica is one broker process of a broker name.
type Replica struct {
	ID     int64  `json:"id"`
	Addr   string `json:"addr"`
	HAAddr string `json:"haAddr"`
	// TimeoutMs is the heartbeat timeout the broker registered with: a new
	// leader treats the replica as alive this long before hearing from it.
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
}

// Op kinds.
const (
	OpRegister  = "register"
	OpElect     = "elect"
	OpAlterSync = "alterSync"
)

// Op is one Raft log entry (JSON).
type Op struct {
	Kind    string `json:"kind"`
	Cluster string `json:"cluster"`
	Name    string `json:"name"`
	// register
	Addr      string `json:"addr,omitempty"`
	HAAddr    string `json:"haAddr,omitempty"`
	TimeoutMs int64  `json:"timeoutMs,omitempty"`
	// elect: NewMaster (0 = clear the master) if the set is still at
	// ExpectEpoch; Unclean allows a NewMaster outside the in-sync set.
	NewMaster   int64 `json:"newMaster,omitempty"`
	ExpectEpoch int32 `json:"expectEpoch,omitempty"`
	Unclean     bool  `json:"unclean,omitempty"`
	// alterSync: from MasterID at MasterEpoch / SyncStateSetEpoch.
	MasterID     int64   `json:"masterId,omitempty"`
	MasterEpoch  int32   `json:"masterEpoch,omitempty"`
	SyncEpoch    int32   `json:"syncEpoch,omitempty"`
	SyncStateSet []int64 `json:"syncStateSet,omitempty"`
	Seq          int64   `json:"seq,omitempty"` // see BrokerSet.AlterSeq; 0: unordered (older brokers)
}

// Result is what Apply returns for one op.
type Result struct {
	Code   int16  // protocol.ResponseSuccess or a CONTROLLER_* code
	Remark string // why, when Code != success
	ID     int64  // register: the replica's id
	Set    BrokerSet
}

// NewState returns an empty State.
func NewState() *State { return &State{Sets: map[string]*BrokerSet{}} }

// MaxBrokerSets bounds the broker names one controller group stores
// (registrations are not authenticated: a bound keeps a misbehaving
// client from growing the raft state without end).
const MaxBrokerSets = 4096

func setKey(cluster, name string) string { return cluster + "/" + name }

// Get returns a copy of one broker set.
func (s *State) Get(cluster, name string) (BrokerSet, bool) {
	bs, ok := s.Sets[setKey(cluster, name)]
	if !ok {
		return BrokerSet{}, false
	}
	return bs.clone(), true
}

// All returns copies of every broker set.
func (s *State) All() []BrokerSet {
	out := make([]BrokerSet, 0, len(s.Sets))
	for _, bs := range s.Sets {
		out = append(out, bs.clone())
	}
	return out
}

func (bs *BrokerSet) clone() BrokerSet {
	c := *bs
	c.Replicas = slices.Clone(bs.Replicas)
	c.SyncStateSet = slices.Clone(bs.SyncStateSet)
	return c
}

// Replica returns the replica with id.
func (bs *BrokerSet) Replica(id int64) (Replica, bool) {
	for _, r := range bs.Replicas {
		if r.ID == id {
			return r, true
		}
	}
	return Replica{}, false
}

// InSync reports whether id is in the in-sync set.
func (bs *BrokerSet) InSync(id int64) bool { return slices.Contains(bs.SyncStateSet, id) }

// Apply applies one op. It is deterministic: the same ops in the same
// order give the same State on every controller.
func (s *State) Apply(op Op) Result {
	switch op.Kind {
	case OpRegister:
		return s.register(op)
	case OpElect:
		return s.elect(op)
	case OpAlterSync:
		return s.alterSync(op)
	}
	return fail(protocol.ResponseControllerInvalidRequest, "unknown op %q", op.Kind)
}

func fail(code int16, format string, args ...any) Result {
	return Result{Code: code, Remark: fmt.Sprintf(format, args...)}
}

// register adds a replica (or finds it by address: a restarted broker
// keeps its id).
func (s *State) register(op Op) Result {
	key := setKey(op.Cluster, op.Name)
	bs := s.Sets[key]
	if bs == nil {
		if len(s.Sets) >= MaxBrokerSets {
			return fail(protocol.ResponseControllerInvalidRequest, "%d broker names registered already", len(s.Sets))
		}
		bs = &BrokerSet{Cluster: op.Cluster, Name: op.Name, NextID: 1}
		s.Sets[key] = bs
	}
	for i, r := range bs.Replicas {
		if r.Addr == op.Addr {
			bs.Replicas[i].HAAddr, bs.Replicas[i].TimeoutMs = op.HAAddr, op.TimeoutMs
			return Result{ID: r.ID, Set: bs.clone()}
		}
	}
	if len(bs.Replicas) >= protocol.MaxReplicasPerName {
		return fail(protocol.ResponseControllerInvalidReplicas, "broker %s has %d replicas already", op.Name, len(bs.Replicas))
	}
	id := bs.NextID
	bs.NextID++
	bs.Replicas = append(bs.Replicas, Replica{ID: id, Addr: op.Addr, HAAddr: op.HAAddr, TimeoutMs: op.TimeoutMs})
	return Result{ID: id, Set: bs.clone()}
}

// elect installs the leader's election decision if nothing changed the
// set since the leader decided (compare-and-set on the master epoch). It
// re-checks the clean-election rule against the committed set: a new
// master must be in the in-sync set unless the op is unclean, or the set
// never had a master (first election). The epoch is bumped for every
// change of master, including clearing it.
func (s *State) elect(op Op) Result {
	bs := s.Sets[setKey(op.Cluster, op.Name)]
	if bs == nil {
		return fail(protocol.ResponseControllerInvalidRequest, "broker %s/%s not registered", op.Cluster, op.Name)
	}
	if bs.MasterEpoch != op.ExpectEpoch {
		return fail(protocol.ResponseControllerFencedMasterEpoch, "master epoch is %d, election was for %d", bs.MasterEpoch, op.ExpectEpoch)
	}
	if op.NewMaster != 0 {
		if _, ok := bs.Replica(op.NewMaster); !ok {
			return fail(protocol.ResponseControllerInvalidReplicas, "broker id %d not registered", op.NewMaster)
		}
		first := bs.MasterEpoch == 0 && len(bs.SyncStateSet) == 0
		if !first && !op.Unclean && !bs.InSync(op.NewMaster) {
			return fail(protocol.ResponseControllerElectMasterFailed, "broker id %d is not in the in-sync set %v", op.NewMaster, bs.SyncStateSet)
		}
		if op.NewMaster == bs.MasterID {
			return fail(protocol.ResponseControllerMasterStillExist, "broker id %d is the master already", op.NewMaster)
		}
	} else if bs.MasterID == 0 {
		return fail(protocol.ResponseControllerMasterNotAvailable, "no master and no candidate")
	}
	bs.MasterID = op.NewMaster
	bs.MasterEpoch++
	bs.AlterSeq = 0
	if op.NewMaster != 0 {
		// Java's electMaster: the new master's set is just itself; the
		// master reports the others as they catch up. A cleared master
		// keeps the old set: its members are the only clean candidates.
		bs.SyncStateSet = []int64{op.NewMaster}
		bs.SyncStateSetEpoch++
	}
	return Result{Set: bs.clone()}
}

// alterSync replaces the in-sync set on the master's report (Java's
// ReplicasInfoManager.alterSyncStateSet rules, facts-2 §21.6; liveness of
// the members is checked by the leader before it proposes the op). Every
// refusal past the lookup carries the set as it is after the op (the
// master learns from it what its earlier proposals did).
func (s *State) alterSync(op Op) Result {
	bs := s.Sets[setKey(op.Cluster, op.Name)]
	switch {
	case bs == nil:
		return fail(protocol.ResponseControllerInvalidRequest, "broker %s/%s not registered", op.Cluster, op.Name)
	case bs.MasterID == 0 || bs.MasterID != op.MasterID:
		return bs.refuse(protocol.ResponseControllerInvalidMaster, "broker id %d is not the master (%d)", op.MasterID, bs.MasterID)
	case bs.MasterEpoch != op.MasterEpoch:
		return bs.refuse(protocol.ResponseControllerFencedMasterEpoch, "master epoch %d, current %d", op.MasterEpoch, bs.MasterEpoch)
	case op.Seq != 0 && op.Seq <= bs.AlterSeq:
		return bs.refuse(protocol.ResponseControllerFencedSyncStateSet, "proposal %d is not after %d", op.Seq, bs.AlterSeq)
	}
	bs.AlterSeq = max(bs.AlterSeq, op.Seq)
	if bs.SyncStateSetEpoch != op.SyncEpoch {
		return bs.refuse(protocol.ResponseControllerFencedSyncStateSet, "sync state set epoch %d, current %d", op.SyncEpoch, bs.SyncStateSetEpoch)
	}
	set := slices.Clone(op.SyncStateSet)
	slices.Sort(set)
	set = slices.Compact(set)
	if !slices.Contains(set, bs.MasterID) {
		return bs.refuse(protocol.ResponseControllerAlterSyncFailed, "the in-sync set must contain the master %d", bs.MasterID)
	}
	for _, id := range set {
		if _, ok := bs.Replica(id); !ok {
			return bs.refuse(protocol.ResponseControllerInvalidReplicas, "broker id %d not registered", id)
		}
	}
	if slices.Equal(set, bs.SyncStateSet) {
		return bs.refuse(protocol.ResponseControllerAlterSyncFailed, "in-sync set unchanged")
	}
	bs.SyncStateSet = set
	bs.SyncStateSetEpoch++
	return Result{Set: bs.clone()}
}

// refuse is fail with the set as it is.
func (bs *BrokerSet) refuse(code int16, format string, args ...any) Result {
	r := fail(code, format, args...)
	r.Set = bs.clone()
	return r
}

// Marshal encodes the State (snapshots).
func (s *State) Marshal() ([]byte, error) { return json.Marshal(s) }

// UnmarshalState decodes a snapshot.
func UnmarshalState(b []byte) (*State, error) {
	s := NewState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("controller: snapshot: %w", err)
	}
	if s.Sets == nil {
		s.Sets = map[string]*BrokerSet{}
	}
	return s, nil
}
