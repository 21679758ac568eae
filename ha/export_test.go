package ha

// Waiting is how many sends wait for slave acknowledgements (tests).
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiters.Len()
}
