package sqlstore

// SetDeleteBatch sets how many rows one statement of DeleteExpired deletes.
func SetDeleteBatch(s *Store, n int) { s.batch = n }

// DialectOf returns the dialect s speaks.
func DialectOf(s *Store) Dialect { return s.dialect }

// SweepDone returns the channel that is closed when the sweep of s has
// stopped, or nil if s has no sweep.
func SweepDone(s *Store) <-chan struct{} { return s.sweeper.Done() }
