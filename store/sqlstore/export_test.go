package sqlstore

// SetDeleteBatch sets how many rows one statement of DeleteExpired deletes.
func SetDeleteBatch(s *Store, n int) { s.batch = n }

// DialectOf returns the dialect s speaks.
func DialectOf(s *Store) Dialect { return s.dialect }
