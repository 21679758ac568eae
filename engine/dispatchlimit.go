package engine

// Dispatch limit: in controller mode with allAckInSyncStateSet a master
// builds consume-queue entries only up to its confirm offset, the least
// offset every member of its in-sync set acknowledged (Java's
// DefaultMessageStore.getReputEndOffset, facts-2 §21.9), so a consumer
// never reads, and commits an offset past, a message a failover may
// still lose and whose queue offset the next master may reuse.

import "sync/atomic"

// dispatchLimit is the optional cap of the dispatcher's visible offset.
type dispatchLimit struct{ f atomic.Pointer[func() int64] }

// cap bounds visible by the limit, if one is set.
func (l *dispatchLimit) cap(visible int64) int64 {
	if f := l.f.Load(); f != nil {
		return min(visible, (*f)())
	}
	return visible
}

// SetDispatchLimit makes the dispatcher build consume-queue entries, the
// index and the other dispatch targets only below limit() (called from
// the dispatcher goroutine and for metrics; it must not block nor call
// back into the store); nil removes the limit. Recovery at Open and the
// final dispatch at Close ignore it: the next Open dispatches the whole
// recovered log anyway (a broker in controller mode reopens its store in
// each role, and a slave truncates what its master never had). Call
// KickDispatch when the limit rises.
func (s *Store) SetDispatchLimit(limit func() int64) {
	if limit == nil {
		s.dispatch.limit.f.Store(nil)
		return
	}
	s.dispatch.limit.f.Store(&limit)
	s.dispatch.kick()
}

// KickDispatch wakes the dispatcher (the dispatch limit rose); it never
// blocks.
func (s *Store) KickDispatch() { s.dispatch.kick() }
