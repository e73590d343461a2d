package sqlstore

import (
	"log/slog"
	"time"

	"github.com/ginsession/ginsession/store"
)

// WithSweepInterval makes the Store delete the rows of expired sessions
// every d, with DeleteExpired, from a goroutine of its own that New starts
// and Close stops. The first sweep runs d after New, so create the table
// before then. Each server of an application may sweep, since concurrent
// sweeps are safe, but one is enough. A d of zero or less, the default,
// starts no goroutine: the program calls DeleteExpired itself.
func WithSweepInterval(d time.Duration) Option {
	return func(s *Store) { s.sweepInterval = d }
}

// WithSweepReport sets a function that the sweep of WithSweepInterval
// calls after each pass with how many rows it deleted and the error that
// ended the pass early, if any. It runs on the sweep's goroutine, and the
// next pass waits for it to return. By default a failed pass is logged
// with slog.Default, at level Warn, and nothing else is reported. A pass
// that Close interrupts is not reported.
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
				slog.Default().Warn("sqlstore: sweep of expired sessions failed", "table", s.table, "deleted", n, "err", err)
			}
		}
	}
	s.sweeper = store.StartSweeper(s.sweepInterval, s.DeleteExpired, report)
}

// Close stops the sweep that WithSweepInterval started: it cancels a pass
// under way and returns once the sweep's goroutine has exited. It does not
// close the *sql.DB, which belongs to the caller, and the Store itself
// stays usable. Close always returns nil; calling it again, concurrently,
// or on a Store without a sweep does nothing.
func (s *Store) Close() error {
	s.sweeper.Stop()
	return nil
}
