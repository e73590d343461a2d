package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
)

func TestSweeper(t *testing.T) {
	t.Parallel()
	if s := store.StartSweeper(0, nil, nil); s != nil || s.Done() != nil {
		t.Fatal("a sweeper without an interval started")
	}
	var passes, reports atomic.Int64
	started := make(chan struct{}, 100)
	s := store.StartSweeper(time.Millisecond, func(ctx context.Context) (int64, error) {
		passes.Add(1)
		started <- struct{}{}
		return 2, nil
	}, func(n int64, err error) {
		if n != 2 || err != nil {
			t.Errorf("report(%d, %v)", n, err)
		}
		reports.Add(1)
	})
	for range 3 {
		<-started
	}
	s.Stop()
	select {
	case <-s.Done():
	default:
		t.Fatal("Stop returned before the goroutine exited")
	}
	n := passes.Load()
	time.Sleep(10 * time.Millisecond)
	if passes.Load() != n || reports.Load() > n {
		t.Fatalf("passes %d → %d after Stop, reports %d", n, passes.Load(), reports.Load())
	}
	s.Stop() // again: nothing

	// A pass that Stop interrupts is not reported.
	block := make(chan struct{})
	var reported atomic.Bool
	s = store.StartSweeper(time.Millisecond, func(ctx context.Context) (int64, error) {
		close(block)
		<-ctx.Done()
		return 0, ctx.Err()
	}, func(int64, error) { reported.Store(true) })
	<-block
	s.Stop()
	if reported.Load() {
		t.Fatal("an interrupted pass was reported")
	}
}
