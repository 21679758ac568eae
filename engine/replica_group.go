package engine

import "sync"

// A SYNC_MASTER's deferred puts wait for their slave in groups (issue 12:
// one replication round releases every waiting send). The flush loop
// completes a round's puts one after another; the first opens a group and
// asks the replica waiter once, for the log's visible offset (the end of
// everything the round released), and the puts after it whose bytes lie
// below that offset join the group instead of each queueing a waiter of
// its own. A slave's report, a timeout or a refusal answers the whole
// group. Per put this leaves a lock and an append where it took a waiter,
// a queue entry, three clock reads and two pooled objects on the master
// (awaitReplica and the per-waiter answers were about 1 of its 11.9
// CPU-µs a message at SYNC_MASTER's maximum, BENCHMARKS.md).
//
// Waiting for the visible offset rather than each put's own end costs
// little: those bytes are written, so the master streams them with the
// put's own. A put joins only a group whose offset its bytes were below
// when it opened: the round that made them visible is the one releasing
// them, so the group's timeout starts within the put's own release.

// replicaGroup is one replica wait shared by stored puts.
type replicaGroup struct {
	s    *Store
	end  int64
	reqs []*putRequest
}

var replicaGroupPool = sync.Pool{New: func() any { return new(replicaGroup) }}

// replicaGroups is the store's open group, guarded by mu.
type replicaGroups struct {
	mu   sync.Mutex
	open *replicaGroup
}

// awaitReplicaGrouped hands r, stored and ending at end, to the open
// group, or to a new one when end is past it. The group finishes r.
func (s *Store) awaitReplicaGrouped(r *putRequest, end int64) {
	s.rg.mu.Lock()
	if g := s.rg.open; g != nil && end <= g.end {
		g.reqs = append(g.reqs, r)
		s.rg.mu.Unlock()
		return
	}
	g := replicaGroupPool.Get().(*replicaGroup)
	g.s, g.end = s, max(end, s.cl.Visible())
	g.reqs = append(g.reqs, r)
	s.rg.open = g
	s.rg.mu.Unlock()
	if st, now := s.replica.(ReplicaAsyncWaiter).WaitReplicaAsync(g.end, g); now {
		g.ReplicaDone(st)
	} // else g may already be answered and recycled
}

// ReplicaDone answers every put of the group (ReplicaDone). It closes the
// group first, so no put joins it once the answer is known.
func (g *replicaGroup) ReplicaDone(st PutStatus) {
	s := g.s
	s.rg.mu.Lock()
	if s.rg.open == g {
		s.rg.open = nil
	}
	reqs := g.reqs
	s.rg.mu.Unlock()
	for _, r := range reqs {
		out := r.out
		if st != PutOK {
			out.Status = st
		}
		r.finish(out)
	}
	clear(reqs)
	g.s, g.reqs = nil, reqs[:0]
	replicaGroupPool.Put(g)
}
