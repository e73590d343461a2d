package mongostore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/mongostore"
)

// commandLog records the name of every command a client sends, through
// the driver's command monitor, so a test can count round trips.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (l *commandLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			l.mu.Lock()
			l.names = append(l.names, e.CommandName)
			l.mu.Unlock()
		},
	}
}

// take returns the commands recorded since the last call.
func (l *commandLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := l.names
	l.names = nil
	return names
}

// TestRoundTrips proves that each operation is a single command, whatever
// its outcome.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	log := &commandLog{}
	client := connect(t, options.Client().SetMonitor(log.monitor()))
	s := mongostore.New(newCollection(t, client))
	ctx := context.Background()
	const key = "session:abc"

	// Connecting and creating the collection are no part of an operation.
	if _, err := s.Save(ctx, "warm-up", []byte("x"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	log.take()

	step := func(op string, want string, wantErr error, run func() error) {
		t.Helper()
		if err := run(); !errors.Is(err, wantErr) {
			t.Fatalf("%s: %v; want %v", op, err, wantErr)
		}
		if got := log.take(); !slices.Equal(got, []string{want}) {
			t.Fatalf("%s sent %q; want only %q", op, got, want)
		}
	}
	var v uint64
	step("Load of a missing key, renewing", "findAndModify", store.ErrNotFound, func() error {
		_, _, err := s.Load(ctx, key, time.Minute)
		return err
	})
	step("Load of a missing key", "find", store.ErrNotFound, func() error {
		_, _, err := s.Load(ctx, key, 0)
		return err
	})
	step("Save of a new session", "update", nil, func() (err error) {
		v, err = s.Save(ctx, key, []byte("one"), 0, time.Minute)
		return err
	})
	step("Save of a new session over a live one", "update", store.ErrConflict, func() error {
		_, err := s.Save(ctx, key, []byte("two"), 0, time.Minute)
		return err
	})
	step("Load renewing the ttl", "findAndModify", nil, func() error {
		_, _, err := s.Load(ctx, key, time.Minute)
		return err
	})
	step("Load keeping the ttl", "find", nil, func() error {
		_, _, err := s.Load(ctx, key, 0)
		return err
	})
	for range 3 {
		step("Save of an existing session", "update", nil, func() (err error) {
			v, err = s.Save(ctx, key, []byte("more"), v, time.Minute)
			return err
		})
	}
	step("Save with a stale version", "update", store.ErrConflict, func() error {
		_, err := s.Save(ctx, key, []byte("stale"), ^v, time.Minute)
		return err
	})
	step("Delete", "delete", nil, func() error {
		return s.Delete(ctx, key)
	})
	step("Delete of a missing key", "delete", nil, func() error {
		return s.Delete(ctx, key)
	})
}
