// Package memstore keeps sessions in the memory of the current process.
//
// It is meant for development, tests and programs that run as a single
// instance. Sessions are not shared between processes, so two replicas
// behind a load balancer would each see only their own, and they are lost
// when the process exits. Use a shared store such as redisstore otherwise.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ginsession/ginsession/store"
)

// sweepInterval is how often, at most, Save walks the whole map to drop
// expired entries. Expired entries never load, swept or not; sweeping only
// gives their memory back.
const sweepInterval = time.Minute

// Store is a store.Store that keeps entries in a map guarded by a mutex.
// It copies payloads in and out, so callers may reuse their slices.
//
// Versions come from one counter for the whole Store, so no version is
// handed out twice, for any key. There is no background goroutine: expired
// entries are dropped when they are next looked at, and all of them at most
// once a minute during Save.
//
// The zero Store is empty and ready to use. A Store must not be copied
// after first use.
type Store struct {
	mu          sync.Mutex
	entries     map[string]entry
	lastVersion uint64
	nextSweep   time.Time
}

type entry struct {
	data    []byte // never modified once stored
	version uint64
	expires time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{entries: make(map[string]entry)}
}

// live returns the entry under key if it has not expired by now, and drops
// it if it has. s.mu must be held.
func (s *Store) live(key string, now time.Time) (entry, bool) {
	e, ok := s.entries[key]
	if ok && !now.Before(e.expires) {
		delete(s.entries, key)
		ok = false
	}
	return e, ok
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("memstore: load: %w", err)
	}
	now := time.Now()
	s.mu.Lock()
	e, ok := s.live(key, now)
	if ok && ttl > 0 {
		s.entries[key] = entry{data: e.data, version: e.version, expires: now.Add(ttl)}
	}
	s.mu.Unlock()
	if !ok {
		return nil, 0, store.ErrNotFound
	}
	return bytes.Clone(e.data), e.version, nil
}

// Save implements store.Store. It returns an error if ttl <= 0.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: save: %w", err)
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("memstore: save: ttl must be positive, got %v", ttl)
	}
	data = bytes.Clone(data)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	var current uint64
	if e, ok := s.live(key, now); ok {
		current = e.version
	}
	if current != version {
		return 0, store.ErrConflict
	}
	if s.entries == nil {
		s.entries = make(map[string]entry)
	}
	s.lastVersion++
	s.entries[key] = entry{data: data, version: s.lastVersion, expires: now.Add(ttl)}
	return s.lastVersion, nil
}

// sweep drops every expired entry if the last sweep was more than
// sweepInterval ago. s.mu must be held.
func (s *Store) sweep(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	s.nextSweep = now.Add(sweepInterval)
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	s.mu.Lock()
	delete(s.entries, key)
	s.mu.Unlock()
	return nil
}
