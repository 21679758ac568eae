package engine

import "sync"

// A SYNC_MASTER's deferred puts wait for their slave in groups (issue 12:
// one replication round releases every waiting send). The flush loop
// completes a round's puts one after another, in log order; the first
// opens a group and asks the replica waiter once, for the log's visible
// offset (the end of what the round wrote or synced) but at most one
// replication batch past its own end (ReplicaBatcher), and the puts after
// it that end at or below that offset join the group instead of each
// queueing a waiter of its own. A slave's report, a timeout or a refusal
// answers the whole group; an answer known at once closes it, and the
// round's next put asks anew.
// Per put this leaves a lock and an append where it took a waiter, a
// queue entry, three clock reads and two pooled objects on the master (in
// ha-pair.sh's profiles at SYNC_MASTER's maximum, the per-put wait and
// the per-waiter answers were about 1 of the master's 11.9 CPU-µs a
// message).
//
// Waiting for the group's end rather than each put's own costs little:
// those bytes are written, so the master streams them with the put's own,
// and the span keeps a group no larger than one replication batch, so a
// slave that acknowledges part of a stream (haSlaveAckDurable) does not
// hold the group's first puts much longer.
// A capped end may fall inside a frame: the slave acknowledges whole
// frames, so the frame's acknowledgement covers it. A put joins only a
// group whose end it was at or below when the group opened: the round
// that made its bytes visible is the one releasing it, so the group's
// timeout starts within the put's own release.

// defaultReplicaGroupSpan bounds a group's end past its first put's when
// the replica waiter does not say its batch size (ReplicaBatcher); it is
// the default of haTransferBatchSize.
const defaultReplicaGroupSpan = 256 << 10

// replicaGroup is one replica wait shared by stored puts.
type replicaGroup struct {
	s    *Store
	end  int64
	reqs []*putRequest
}

var replicaGroupPool = sync.Pool{New: func() any { return new(replicaGroup) }}

// replicaGroups is the store's open group, guarded by mu, and the span
// its groups may have (set with the replica waiter).
type replicaGroups struct {
	mu   sync.Mutex
	open *replicaGroup
	span int64
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
	g.s, g.end = s, min(max(end, s.cl.Visible()), end+s.rg.span)
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
