package store

import (
	"context"
	"time"
)

// A Sweeper calls a store's clean-up pass, such as deleting expired
// entries, at a fixed interval from a goroutine of its own, for stores
// whose backend does not expire entries by itself (sqlstore, mongostore).
type Sweeper struct {
	stop context.CancelFunc
	done chan struct{}
}

// StartSweeper starts a goroutine that calls pass every interval until
// Stop, and then report, if not nil, with what pass returned. pass gets a
// context that Stop cancels; a pass that Stop interrupts is not reported.
// The first pass runs interval after StartSweeper. It returns nil, and
// starts nothing, if interval is not positive; a nil Sweeper's methods do
// nothing.
func StartSweeper(interval time.Duration, pass func(context.Context) (int64, error), report func(n int64, err error)) *Sweeper {
	if interval <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sweeper{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n, err := pass(ctx)
			if ctx.Err() != nil {
				return // Stop interrupted the pass
			}
			if report != nil {
				report(n, err)
			}
		}
	}()
	return s
}

// Stop cancels a pass under way and returns once the goroutine has
// exited. Calling it again, or concurrently, does nothing more.
func (s *Sweeper) Stop() {
	if s == nil {
		return
	}
	s.stop()
	<-s.done
}

// Done returns a channel closed once the goroutine has exited, or nil for
// a nil Sweeper.
func (s *Sweeper) Done() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.done
}
