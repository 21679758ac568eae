package ha

import "time"

// Fence stops (true) or resumes (false) acknowledging SYNC_MASTER writes:
// while fenced, every send not yet acknowledged (a report that came
// before the fence may still be delivering its acknowledgements) fails
// with ErrFenced at once, new waits
// fail the same way, and slave reports release nothing. A controller fences
// a master that may have lost its mastership, so two masters never both
// acknowledge a write.
func (s *Server) Fence(on bool) {
	s.mu.Lock()
	s.fenced = on
	s.mu.Unlock()
	if on {
		s.releaseAll(ErrFenced)
	}
}

// Fenced reports whether the server is fenced.
func (s *Server) Fenced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}

// SetLease makes acknowledgements conditional on a deadline (controller
// mode): after until, slave reports release no waiter and new waits fail
// with ErrFenced, exactly as if fenced, even when whoever renews the lease
// (the controller agent) has not yet noticed that it ran out: a process
// stalled past its lease must not acknowledge on resuming. The zero time
// means no lease (static roles). until should carry a monotonic reading
// (time.Now().Add).
func (s *Server) SetLease(until time.Time) {
	s.mu.Lock()
	s.lease = until
	s.mu.Unlock()
}

// holdsLocked reports whether the server may acknowledge at now: not
// fenced and, with a lease, before its deadline. s.mu is held.
func (s *Server) holdsLocked(now time.Time) bool {
	return !s.fenced && (s.lease.IsZero() || now.Before(s.lease))
}
