package mongostore

// SweepDone returns the channel that is closed when the sweep of s has
// stopped, or nil if s has no sweep.
func SweepDone(s *Store) <-chan struct{} { return s.sweeper.Done() }
