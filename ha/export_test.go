package ha

// Waiting is how many sends wait for slave acknowledgements (tests): the
// queued waiters not marked as timed out.
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters.Take(nil)
	n := 0
	for _, w := range ws {
		if _, gone := s.abandoned[w]; !gone {
			n++
		}
	}
	s.waiters.Requeue(ws)
	return n
}

// Queued is how many waiters the queue holds, timed-out ones not yet
// compacted away included (tests).
func (s *Server) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiters.Len()
}
