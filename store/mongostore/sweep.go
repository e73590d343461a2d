package mongostore

import (
	"log/slog"
	"time"

	"github.com/ginsession/ginsession/store"
)

// WithSweepInterval makes the Store delete the documents of expired
// sessions every d, with DeleteExpired, from a goroutine of its own that
// New starts and Close stops. The first sweep runs d after New. It is
// meant for servers without TTL indexes, such as FerretDB v1; with the
// index of EnsureIndexes MongoDB evicts expired documents itself. A d of
// zero or less, the default, starts no goroutine.
func WithSweepInterval(d time.Duration) Option {
	return func(s *Store) { s.sweepInterval = d }
}

// WithSweepReport sets a function that the sweep of WithSweepInterval
// calls after each pass with how many documents it deleted and its error,
// if any. It runs on the sweep's goroutine, and the next pass waits for it
// to return. By default a failed pass is logged with slog.Default, at
// level Warn, and nothing else is reported. A pass that Close interrupts
// is not reported.
func WithSweepReport(f func(deleted int64, err error)) Option {
	return func(s *Store) { s.sweepReport = f }
}

// startSweep starts the sweep goroutine if WithSweepInterval asked for
// one.
func (s *Store) startSweep() {
	report := s.sweepReport
	if report == nil {
		report = func(n int64, err error) {
			if err != nil {
				slog.Default().Warn("mongostore: sweep of expired sessions failed", "collection", s.coll.Name(), "err", err)
			}
		}
	}
	s.sweeper = store.StartSweeper(s.sweepInterval, s.DeleteExpired, report)
}

// Close stops the sweep that WithSweepInterval started: it cancels a pass
// under way and returns once the sweep's goroutine has exited. It does not
// disconnect the client, which belongs to the caller, and the Store itself
// stays usable. Close always returns nil; calling it again, concurrently,
// or on a Store without a sweep does nothing.
func (s *Store) Close() error {
	s.sweeper.Stop()
	return nil
}
