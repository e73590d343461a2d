// Package memstore keeps sessions in the memory of the current process.
//
// It is meant for development, tests and programs that run as a single
// instance. Sessions are not shared between processes, so two replicas
// behind a load balancer would each see only their own, and they are lost
// when the process exits. Use a shared store such as redisstore otherwise.
//
// A Store has a capacity, in entries and in bytes of keys and payloads
// (by default [DefaultMaxEntries] and [DefaultMaxBytes]), so that visitors
// who each leave a session behind cannot grow the process without limit.
// When a Save needs room, the Store evicts the entries closest to expiry
// first; see [Store] for the details and [Store.Stats] to watch it happen.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ginsession/ginsession/store"
)

// Default capacity of a Store, used by the zero Store and by New unless an
// Option says otherwise.
//
// 100,000 sessions is more than a single instance keeping sessions in its
// own memory usually has live at once, yet few enough that the Store's own
// bookkeeping (about 100 bytes per entry on 64-bit platforms, on top of
// the key and payload) stays near 10 MiB. 64 MiB of keys and payloads
// allows the full 100,000 entries an average of 671 bytes each, more than
// a typical session (a 43-byte ID and a few hundred bytes of values), and
// bounds a store of larger sessions at what a small container can spare:
// a full default Store holds about 80 MiB in all. Whichever bound is
// reached first applies.
const (
	DefaultMaxEntries       = 100_000
	DefaultMaxBytes   int64 = 64 << 20
)

// ErrTooLarge is wrapped by the error Save returns when the key and payload
// together are larger than the Store's whole byte capacity. Such an entry
// is refused rather than stored at the cost of every other session; the
// entry already stored under the key, if any, is left as it was.
var ErrTooLarge = errors.New("memstore: entry too large")

// An Option sets a Store's capacity in New.
type Option func(*options)

type options struct {
	maxEntries int
	maxBytes   int64
}

// WithMaxEntries sets how many entries a Store keeps at most. The default
// is DefaultMaxEntries. New panics if n is not positive. There is no
// setting for "unbounded": a Store that must never evict can be given
// math.MaxInt, and then holds whatever the process's memory allows.
func WithMaxEntries(n int) Option {
	return func(o *options) { o.maxEntries = n }
}

// WithMaxBytes sets how many bytes of keys and payloads a Store keeps at
// most: the sum of len(key)+len(data) over its entries. The Store's own
// bookkeeping is not counted; WithMaxEntries bounds that. The default is
// DefaultMaxBytes. New panics if n is not positive. For no practical
// bound, pass math.MaxInt64.
func WithMaxBytes(n int64) Option {
	return func(o *options) { o.maxBytes = n }
}

// Store is a store.Store that keeps entries in a map guarded by a mutex.
// It copies payloads in and out, so callers may reuse their slices.
//
// Versions come from one counter for the whole Store, so no version is
// handed out twice, for any key, whether an entry was deleted, expired or
// evicted.
//
// Entries are also kept in a min-heap ordered by expiry, which Load with
// a positive ttl keeps up to date. There is no background goroutine: every
// Save first drops the entries that have expired, from the top of the
// heap; an expired entry is also dropped when Load or Save looks it up,
// and it never loads.
//
// If a Save would then take the Store over its capacity, in entries or in
// bytes, the Store evicts live entries, the one closest to expiry first,
// until the new entry fits. An entry renewed by Load has moved back in that
// order. The entry being saved is never evicted to make room for itself,
// even if it expires sooner than the others; an entry that could not fit
// in an empty Store is refused with ErrTooLarge instead. A session that was
// evicted behaves as one that expired: it no longer loads, and a Save with
// its old version returns store.ErrConflict.
//
// The zero Store is empty and ready to use, with the default capacity. A
// Store must not be copied after first use.
type Store struct {
	mu          sync.Mutex
	entries     map[string]*entry
	heap        []*entry // min-heap on expires; heap[i].index == i
	bytes       int64    // sum of entry.size() over entries
	lastVersion uint64
	evictions   uint64

	// Set by New and never changed; zero means the default.
	maxEntries int
	maxBytes   int64
}

type entry struct {
	key     string
	data    []byte // never modified once stored
	version uint64
	expires int64 // monotonic clock: nanoseconds since epoch
	index   int   // position in Store.heap
}

// size is what an entry counts against the Store's byte capacity.
func (e *entry) size() int64 { return int64(len(e.key)) + int64(len(e.data)) }

var _ store.Store = (*Store)(nil)

// epoch is where the Store's clock starts. Expiry times are kept as
// nanoseconds since epoch, read from the monotonic clock, so a change of
// the wall clock neither expires nor revives any session.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// expiry returns the time ttl after t, saturating rather than wrapping
// around for a very long ttl.
func expiry(t int64, ttl time.Duration) int64 {
	if int64(ttl) > math.MaxInt64-t {
		return math.MaxInt64
	}
	return t + int64(ttl)
}

// New returns an empty Store with the capacity the options give, by
// default DefaultMaxEntries and DefaultMaxBytes. It panics if an option
// sets a capacity that is not positive.
func New(opts ...Option) *Store {
	o := options{maxEntries: DefaultMaxEntries, maxBytes: DefaultMaxBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxEntries <= 0 {
		panic(fmt.Sprintf("memstore: WithMaxEntries(%d): the capacity must be positive", o.maxEntries))
	}
	if o.maxBytes <= 0 {
		panic(fmt.Sprintf("memstore: WithMaxBytes(%d): the capacity must be positive", o.maxBytes))
	}
	return &Store{
		entries:    make(map[string]*entry),
		maxEntries: o.maxEntries,
		maxBytes:   o.maxBytes,
	}
}

// limits returns the Store's capacity, filling in the defaults for the
// zero Store.
func (s *Store) limits() (maxEntries int, maxBytes int64) {
	maxEntries, maxBytes = s.maxEntries, s.maxBytes
	if maxEntries == 0 {
		maxEntries = DefaultMaxEntries
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	return maxEntries, maxBytes
}

// Stats describes a Store at one moment. Expired entries are dropped before
// it is taken, so Entries and Bytes count only live ones.
type Stats struct {
	// Entries is how many entries the Store holds.
	Entries int

	// Bytes is how many bytes of keys and payloads the Store holds: the
	// sum of len(key)+len(data) over its entries, what WithMaxBytes bounds.
	Bytes int64

	// Evictions is how many live entries the Store has removed, since it
	// was created, to make room for others. Entries that expired, or were
	// deleted or overwritten, are not counted.
	Evictions uint64
}

// Stats returns the Store's current Stats.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpired(now())
	return Stats{Entries: len(s.heap), Bytes: s.bytes, Evictions: s.evictions}
}

// live returns the entry under key if it has not expired by t, and drops
// it if it has. s.mu must be held.
func (s *Store) live(key string, t int64) *entry {
	e := s.entries[key]
	if e != nil && e.expires <= t {
		s.remove(e)
		return nil
	}
	return e
}

// Load implements store.Store. A positive ttl also moves the entry back in
// the order of eviction.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("memstore: load: %w", err)
	}
	t := now()
	s.mu.Lock()
	e := s.live(key, t)
	if e == nil {
		s.mu.Unlock()
		return nil, 0, store.ErrNotFound
	}
	if ttl > 0 {
		e.expires = expiry(t, ttl)
		s.fix(e.index)
	}
	data, version := e.data, e.version
	s.mu.Unlock()
	return bytes.Clone(data), version, nil
}

// Save implements store.Store. It returns an error if ttl <= 0, and one
// wrapping ErrTooLarge if len(key)+len(data) exceeds the Store's byte
// capacity. To make room it may evict other entries; see Store.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: save: %w", err)
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("memstore: save: ttl must be positive, got %v", ttl)
	}
	maxEntries, maxBytes := s.limits()
	size := int64(len(key)) + int64(len(data))
	if size > maxBytes {
		return 0, fmt.Errorf("memstore: save: key and data take %d bytes, more than the store's capacity of %d: %w",
			size, maxBytes, ErrTooLarge)
	}
	data = bytes.Clone(data)
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpired(t)
	e := s.live(key, t)
	var current uint64
	if e != nil {
		current = e.version
	}
	if current != version {
		return 0, store.ErrConflict
	}
	s.lastVersion++
	if e != nil && s.bytes-e.size()+size <= maxBytes {
		// An overwrite that needs no room: update the entry where it is.
		s.bytes += size - e.size()
		e.data, e.version, e.expires = data, s.lastVersion, expiry(t, ttl)
		s.fix(e.index)
		return e.version, nil
	}
	if e != nil {
		s.remove(e) // added back below, after the eviction, so it never evicts itself
	}
	for len(s.heap) > 0 && (len(s.heap) >= maxEntries || s.bytes+size > maxBytes) {
		evicted := s.heap[0]
		s.remove(evicted)
		s.evictions++
		if e == nil {
			e = evicted // nothing else refers to it: reuse it rather than allocate
		}
	}
	if e == nil {
		e = new(entry)
	}
	*e = entry{key: key, data: data, version: s.lastVersion, expires: expiry(t, ttl)}
	s.add(e)
	return e.version, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	s.mu.Lock()
	if e := s.entries[key]; e != nil {
		s.remove(e)
	}
	s.mu.Unlock()
	return nil
}

// dropExpired removes the entries that have expired by t, from the top of
// the heap. s.mu must be held.
func (s *Store) dropExpired(t int64) {
	for len(s.heap) > 0 && s.heap[0].expires <= t {
		s.remove(s.heap[0])
	}
}

// add puts e, which is in neither, into the map and the heap. s.mu must be
// held.
func (s *Store) add(e *entry) {
	if s.entries == nil {
		s.entries = make(map[string]*entry)
	}
	s.entries[e.key] = e
	s.bytes += e.size()
	e.index = len(s.heap)
	s.heap = append(s.heap, e)
	s.up(e.index)
}

// remove takes e out of the map and the heap. s.mu must be held.
func (s *Store) remove(e *entry) {
	delete(s.entries, e.key)
	s.bytes -= e.size()
	i, last := e.index, len(s.heap)-1
	if i != last {
		s.swap(i, last)
	}
	s.heap[last] = nil // let the entry be collected
	s.heap = s.heap[:last]
	if i != last {
		s.fix(i)
	}
	e.index = -1
}

// fix restores the heap order after the expiry of heap[i] changed.
func (s *Store) fix(i int) {
	if !s.down(i) {
		s.up(i)
	}
}

func (s *Store) less(i, j int) bool { return s.heap[i].expires < s.heap[j].expires }

func (s *Store) swap(i, j int) {
	h := s.heap
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

// up moves heap[i] towards the root until its parent expires no later.
func (s *Store) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			return
		}
		s.swap(i, parent)
		i = parent
	}
}

// down moves heap[i] towards the leaves until neither child expires
// sooner. It reports whether heap[i] moved.
func (s *Store) down(i int) bool {
	start, n := i, len(s.heap)
	for {
		child := 2*i + 1
		if child >= n {
			break
		}
		if right := child + 1; right < n && s.less(right, child) {
			child = right
		}
		if !s.less(child, i) {
			break
		}
		s.swap(i, child)
		i = child
	}
	return i != start
}
