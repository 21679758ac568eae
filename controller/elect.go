package controller

import (
	"slices"
	"time"
)

// Live is what the leader controller knows of one replica from its
// heartbeats. It is not replicated: a new leader starts with everyone
// alive as of its first heartbeat from them (liveness.go).
type Live struct {
	Last      time.Time     // when the last heartbeat arrived
	Timeout   time.Duration // controllerHeartBeatTimeoutMills the broker sent
	Epoch     int32         // last epoch in its epoch file
	MaxOffset int64         // its commit-log max offset
	Priority  int32         // brokerElectionPriority, lower preferred
	// Seeded marks an entry a new leader made up for a replica it has not
	// heard from yet: it keeps a master alive (not elected away) but never
	// makes a candidate.
	Seeded bool
}

// Alive reports whether the replica heartbeated within its timeout.
func (l Live) Alive(now time.Time) bool { return !l.Last.IsZero() && now.Sub(l.Last) <= l.Timeout }

// Decide applies the election rule (Java's DefaultElectPolicy, facts-2
// §21.5) to one broker set: it returns the op to propose, or false when
// the set needs no change (its master is alive, or there is neither a
// master nor a candidate).
//
//   - The master alive: nothing to do.
//   - Candidates: the alive members of the in-sync set; on the very first
//     election of a set (epoch 0, empty in-sync set) every alive replica;
//     with none and unclean allowed (enableElectUncleanMaster) every alive
//     replica, marked unclean.
//   - Best candidate: higher epoch, then higher max offset, then lower
//     priority, then lower id.
//   - No candidate and a dead master: clear the master (bumping the
//     epoch), so no one acts as master until an in-sync replica returns.
func Decide(bs BrokerSet, live map[int64]Live, now time.Time, unclean bool) (Op, bool) {
	if bs.MasterID != 0 && live[bs.MasterID].Alive(now) {
		return Op{}, false
	}
	op := Op{Kind: OpElect, Cluster: bs.Cluster, Name: bs.Name, ExpectEpoch: bs.MasterEpoch}
	first := bs.MasterEpoch == 0 && len(bs.SyncStateSet) == 0
	var cands []int64
	for _, r := range bs.Replicas {
		if l := live[r.ID]; l.Alive(now) && !l.Seeded && (first || bs.InSync(r.ID)) {
			cands = append(cands, r.ID)
		}
	}
	if len(cands) == 0 && unclean {
		for _, r := range bs.Replicas {
			if l := live[r.ID]; l.Alive(now) && !l.Seeded {
				cands = append(cands, r.ID)
			}
		}
		op.Unclean = len(cands) > 0
	}
	if len(cands) == 0 {
		if bs.MasterID == 0 {
			return Op{}, false
		}
		return op, true // clear the dead master
	}
	op.NewMaster = slices.MinFunc(cands, func(a, b int64) int { return better(live[a], live[b], a, b) })
	return op, true
}

// better orders candidates best first.
func better(a, b Live, ida, idb int64) int {
	switch {
	case a.Epoch != b.Epoch:
		return cmpDesc(int64(a.Epoch), int64(b.Epoch))
	case a.MaxOffset != b.MaxOffset:
		return cmpDesc(a.MaxOffset, b.MaxOffset)
	case a.Priority != b.Priority:
		return -cmpDesc(int64(a.Priority), int64(b.Priority))
	}
	return -cmpDesc(ida, idb)
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
