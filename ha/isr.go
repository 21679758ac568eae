package ha

// All-in-sync acknowledgement (controller mode, Java's allAckInSyncStateSet;
// facts-2 §21.6, §21.9): a SYNC_MASTER send is released only once EVERY
// slave of the in-sync set has acknowledged its bytes, not the first slave
// that does (the 4.x rule WaitAck keeps for static roles). The argument
// that this makes every acknowledged message survive any clean election,
// without a lease, is in controller/doc.go ("Acknowledgement").

import (
	"errors"
	"slices"
	"time"

	"github.com/mqd/mqd/flush"
)

// ErrInSyncNotEnough fails a SYNC_MASTER send when the in-sync set
// (counting the master) is smaller than MinInSync: Java answers such a
// put IN_SYNC_REPLICAS_NOT_ENOUGH (code 1, "in-sync replicas not enough").
var ErrInSyncNotEnough = errors.New("in-sync replicas not enough")

// SyncSet is who must acknowledge a SYNC_MASTER send in all-in-sync mode.
// Ids are the slaves' brokerIds as their hello gives them (Config.BrokerID,
// the controller's ids); the master itself is never listed.
type SyncSet struct {
	// Committed is the controller's committed in-sync set without the
	// master.
	Committed []int64
	// Pending holds every slave of an in-sync change the master proposed
	// whose outcome it does not know yet (without the master). While a
	// change is pending the master waits for the UNION of both: an
	// expansion counts at once, a shrink only once committed.
	Pending []int64
	// MinInSync is minInSyncReplicas: the least in-sync count, the master
	// included, with which a send is accepted (≤ 1: any).
	MinInSync int
	// OnConfirm, if set, is called when ConfirmOffset may have risen
	// (under the server's lock: it must not block nor call the server).
	OnConfirm func()
}

// isrState is the server's all-in-sync configuration (guarded by
// Server.mu); nil means the 4.x rule.
type isrState struct {
	need      []int64 // union of Committed and Pending, sorted, deduplicated
	minInSync int
	confirmed int64 // highest send end released
	covered   int64 // last ConfirmOffset OnConfirm was called for
	onConfirm func()
}

// SetSyncSet switches the server to all-in-sync acknowledgement (for good:
// a server never goes back to the 4.x rule) and sets whose acks count.
// Waiters the new set already covers are released; a shrink never
// releases a waiter below MinInSync.
func (s *Server) SetSyncSet(ss SyncSet) {
	need := append(slices.Clone(ss.Committed), ss.Pending...)
	slices.Sort(need)
	need = slices.Compact(need)
	s.mu.Lock()
	if s.isr == nil {
		s.isr = &isrState{}
	}
	s.isr.need, s.isr.minInSync, s.isr.onConfirm = need, ss.MinInSync, ss.OnConfirm
	s.isrOn.Store(true)
	ready := s.takeCoveredISRLocked(nil)
	s.mu.Unlock()
	release(ready)
}

// ConfirmOffset is Java's confirmOffset: the least offset every slave the
// server waits for (committed and pending in-sync members) acknowledged,
// 0 while one has no connection; with no slave to wait for, or under the
// 4.x rule, max int64 (the master alone is the reference). A master in
// all-in-sync mode dispatches consume-queue entries only below it
// (engine.Store.SetDispatchLimit), so consumers never see a message the
// in-sync set does not hold.
func (s *Server) ConfirmOffset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isr == nil {
		return 1<<63 - 1
	}
	return s.coveredLocked()
}

// Confirmed is the highest send end released in all-in-sync mode: every
// slave of the in-sync set (as this server knew it) held the bytes below
// it when it was released. A slave joining the in-sync set must hold them
// too (its acknowledged offset at least Confirmed) before the master
// proposes it.
func (s *Server) Confirmed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isr == nil {
		return 0
	}
	return s.isr.confirmed
}

// enoughLocked reports whether the in-sync count reaches MinInSync.
func (i *isrState) enoughLocked() bool { return 1+len(i.need) >= i.minInSync }

// coveredLocked is the offset every needed slave has acknowledged over a
// connection to this server (the highest of its connections: a slave that
// reconnected may briefly have two); 0 when one has no connection. With
// no slave needed the master alone holds everything: max int64.
func (s *Server) coveredLocked() int64 {
	covered := int64(1<<63 - 1)
	for _, id := range s.isr.need {
		best := int64(-1)
		for sc := range s.conns {
			if sc.brokerID == id {
				best = max(best, sc.acked)
			}
		}
		if best < 0 {
			return 0
		}
		covered = min(covered, best)
	}
	return covered
}

// takeCoveredISRLocked removes every waiter the in-sync set covers, if
// the set is large enough and the server may acknowledge, and appends
// them to dst; the caller releases them after unlocking.
func (s *Server) takeCoveredISRLocked(dst []*flush.Waiter) []*flush.Waiter {
	covered := s.coveredLocked()
	if covered != s.isr.covered {
		s.isr.covered = covered
		if covered > 0 && s.isr.onConfirm != nil {
			s.isr.onConfirm()
		}
	}
	if !s.isr.enoughLocked() || !s.holdsLocked(time.Now()) {
		return dst
	}
	taken := len(dst)
	dst = s.waiters.TakeThrough(covered, dst)
	for _, w := range dst[taken:] {
		s.isr.confirmed = max(s.isr.confirmed, w.End)
	}
	return dst
}

// decideISRLocked is decideLocked in all-in-sync mode: refused below
// MinInSync, acknowledged at once when already covered, else to be
// queued until every needed slave acknowledges (ack, SetSyncSet) or the
// timeout. A needed slave that is not connected holds the send: it is
// never acknowledged by a smaller set than the in-sync set.
func (s *Server) decideISRLocked(end int64) (decided bool, err error) {
	if !s.isr.enoughLocked() {
		return true, ErrInSyncNotEnough
	}
	if s.coveredLocked() >= end {
		s.isr.confirmed = max(s.isr.confirmed, end)
		return true, nil
	}
	return false, nil
}

// dropWaiter forgets a timed-out send's waiter: in all-in-sync mode
// nothing else would take it off the queue (a missing in-sync slave holds
// every send, and no FallBehindMax bound applies), so the queue, rescanned
// under s.mu on every report, would grow with every send. Removal is lazy
// so that n timeouts cost O(n), not O(n²) under s.mu: the waiter is
// marked, and the queue is compacted once the marked ones reach half of
// it (and at least abandonBatch). A marked waiter released meanwhile gets
// a value nobody reads (timed-out waiters are never recycled); the send
// still reports the timeout (never a false success).
func (s *Server) dropWaiter(w *flush.Waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropWaiterLocked(w)
}

// dropWaiterLocked is dropWaiter with s.mu held.
func (s *Server) dropWaiterLocked(w *flush.Waiter) {
	if s.abandoned == nil {
		s.abandoned = map[*flush.Waiter]struct{}{}
	}
	s.abandoned[w] = struct{}{}
	if n := len(s.abandoned); n < abandonBatch || 2*n < s.waiters.Len() {
		return
	}
	ws := slices.DeleteFunc(s.waiters.Take(nil), func(w *flush.Waiter) bool {
		_, gone := s.abandoned[w]
		return gone
	})
	s.waiters.Requeue(ws)
	clear(s.abandoned)
}

// abandonBatch is the fewest timed-out waiters dropWaiter compacts for.
const abandonBatch = 64

// EnoughInSync reports whether a SYNC_MASTER send may be accepted: always
// under the 4.x rule, in all-in-sync mode when the in-sync count reaches
// MinInSync (checked again when the send waits).
func (s *Server) EnoughInSync() bool {
	if !s.isrOn.Load() { // the 4.x rule until SetSyncSet: no lock a put
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isr == nil || s.isr.enoughLocked()
}
