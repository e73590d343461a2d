package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	s := memstore.New() // one Store for all subtests, as in a real program
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

func TestConformanceZeroValue(t *testing.T) {
	t.Parallel()
	var s memstore.Store
	storetest.Run(t, func(*testing.T) store.Store { return &s })
}

func TestNewPanicsOnNonPositiveCapacity(t *testing.T) {
	tests := []struct {
		name string
		opt  memstore.Option
		want string
	}{
		{"zero entries", memstore.WithMaxEntries(0), "WithMaxEntries(0)"},
		{"negative entries", memstore.WithMaxEntries(-1), "WithMaxEntries(-1)"},
		{"zero bytes", memstore.WithMaxBytes(0), "WithMaxBytes(0)"},
		{"negative bytes", memstore.WithMaxBytes(-5), "WithMaxBytes(-5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "must be positive") {
					t.Fatalf("New panicked with %q; want a message naming %s", msg, tt.want)
				}
			}()
			memstore.New(tt.opt)
		})
	}
}

func TestNewAcceptsLargeCapacity(t *testing.T) {
	s := memstore.New(memstore.WithMaxEntries(math.MaxInt), memstore.WithMaxBytes(math.MaxInt64))
	mustSave(t, s, "k", []byte("x"), 0, time.Hour)
}

// timed is a key and a ttl.
type timed struct {
	key string
	ttl time.Duration
}

func TestEvictsSoonestExpiringFirst(t *testing.T) {
	tests := []struct {
		name        string
		opts        []memstore.Option
		saves       []timed // each with a 10-byte payload
		loads       []timed // Load(key, ttl) after the saves
		save        timed   // the Save that needs room, also with a 10-byte payload
		wantEvicted []string
	}{{
		name:        "not the first saved",
		opts:        []memstore.Option{memstore.WithMaxEntries(3)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}},
		save:        timed{"new", 4 * time.Hour},
		wantEvicted: []string{"b"},
	}, {
		name:        "renewal moves an entry back",
		opts:        []memstore.Option{memstore.WithMaxEntries(3)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}},
		loads:       []timed{{"b", 5 * time.Hour}},
		save:        timed{"new", 4 * time.Hour},
		wantEvicted: []string{"c"},
	}, {
		name:        "a load without renewal does not",
		opts:        []memstore.Option{memstore.WithMaxEntries(3)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}},
		loads:       []timed{{"b", 0}},
		save:        timed{"new", 4 * time.Hour},
		wantEvicted: []string{"b"},
	}, {
		name:        "renewal to a shorter ttl moves an entry forward",
		opts:        []memstore.Option{memstore.WithMaxEntries(3)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}},
		loads:       []timed{{"a", time.Minute}},
		save:        timed{"new", 4 * time.Hour},
		wantEvicted: []string{"a"},
	}, {
		name:        "the new entry is kept even if it expires first",
		opts:        []memstore.Option{memstore.WithMaxEntries(3)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}},
		save:        timed{"new", time.Minute},
		wantEvicted: []string{"b"},
	}, {
		name:        "overwrite at capacity evicts nothing",
		opts:        []memstore.Option{memstore.WithMaxEntries(3)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}},
		save:        timed{"b", time.Minute},
		wantEvicted: nil,
	}, {
		name:        "by bytes, as many as needed",
		opts:        []memstore.Option{memstore.WithMaxBytes(44)}, // four 11-byte entries
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}, {"d", 4 * time.Hour}},
		save:        timed{"new", 5 * time.Hour}, // 13 bytes
		wantEvicted: []string{"b", "c"},
	}, {
		name:        "by bytes, an overwrite that grows",
		opts:        []memstore.Option{memstore.WithMaxBytes(44)},
		saves:       []timed{{"a", 3 * time.Hour}, {"b", 1 * time.Hour}, {"c", 2 * time.Hour}, {"d", 4 * time.Hour}},
		loads:       []timed{{"b", 6 * time.Hour}},
		save:        timed{"c", 5 * time.Hour}, // replaces "c" with 20 bytes: needs 9 more
		wantEvicted: []string{"a"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := memstore.New(tt.opts...)
			versions := map[string]uint64{}
			for _, sv := range tt.saves {
				versions[sv.key] = mustSave(t, s, sv.key, make([]byte, 10), 0, sv.ttl)
			}
			for _, l := range tt.loads {
				if _, _, err := s.Load(ctx, l.key, l.ttl); err != nil {
					t.Fatalf("Load(%q): %v", l.key, err)
				}
			}
			data := make([]byte, 10)
			if _, ok := versions[tt.save.key]; ok {
				data = make([]byte, 19)
			}
			mustSave(t, s, tt.save.key, data, versions[tt.save.key], tt.save.ttl)

			var evicted []string
			for _, sv := range tt.saves {
				if _, _, err := s.Load(ctx, sv.key, 0); errors.Is(err, store.ErrNotFound) {
					evicted = append(evicted, sv.key)
				} else if err != nil {
					t.Fatalf("Load(%q): %v", sv.key, err)
				}
			}
			if !slices.Equal(evicted, tt.wantEvicted) {
				t.Errorf("evicted %q; want %q", evicted, tt.wantEvicted)
			}
			if _, _, err := s.Load(ctx, tt.save.key, 0); err != nil {
				t.Errorf("the entry just saved does not load: %v", err)
			}
			if got := s.Stats().Evictions; got != uint64(len(tt.wantEvicted)) {
				t.Errorf("Stats().Evictions = %d; want %d", got, len(tt.wantEvicted))
			}
		})
	}
}

func TestEvictedEntryBehavesAsExpired(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(memstore.WithMaxEntries(1))
	old := mustSave(t, s, "a", []byte("1"), 0, time.Hour)
	mustSave(t, s, "b", []byte("2"), 0, time.Hour)
	if _, _, err := s.Load(ctx, "a", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of an evicted entry: err = %v; want ErrNotFound", err)
	}
	if _, err := s.Save(ctx, "a", []byte("3"), old, time.Hour); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save with an evicted entry's version: err = %v; want ErrConflict", err)
	}
	if v := mustSave(t, s, "a", []byte("3"), 0, time.Hour); v == old {
		t.Fatalf("re-created entry got its evicted version %d again", v)
	}
}

func TestBytesAccounting(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	var versions = map[string]uint64{}
	steps := []struct {
		name string
		do   func() error
		want memstore.Stats
	}{
		{"save", func() (err error) {
			versions["key"], err = s.Save(ctx, "key", make([]byte, 10), 0, time.Hour)
			return err
		}, memstore.Stats{Entries: 1, Bytes: 13}},
		{"save another", func() (err error) {
			versions["other"], err = s.Save(ctx, "other", make([]byte, 100), 0, time.Hour)
			return err
		}, memstore.Stats{Entries: 2, Bytes: 118}},
		{"overwrite smaller", func() (err error) {
			versions["key"], err = s.Save(ctx, "key", make([]byte, 2), versions["key"], time.Hour)
			return err
		}, memstore.Stats{Entries: 2, Bytes: 110}},
		{"overwrite larger", func() (err error) {
			versions["key"], err = s.Save(ctx, "key", make([]byte, 50), versions["key"], time.Hour)
			return err
		}, memstore.Stats{Entries: 2, Bytes: 158}},
		{"conflicting save changes nothing", func() error {
			_, err := s.Save(ctx, "key", make([]byte, 1000), 0, time.Hour)
			if !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("err = %v; want ErrConflict", err)
			}
			return nil
		}, memstore.Stats{Entries: 2, Bytes: 158}},
		{"load and renew changes nothing", func() error {
			_, _, err := s.Load(ctx, "key", 2*time.Hour)
			return err
		}, memstore.Stats{Entries: 2, Bytes: 158}},
		{"delete", func() error { return s.Delete(ctx, "other") }, memstore.Stats{Entries: 1, Bytes: 53}},
		{"delete missing", func() error { return s.Delete(ctx, "other") }, memstore.Stats{Entries: 1, Bytes: 53}},
		{"empty payload", func() (err error) {
			versions["key"], err = s.Save(ctx, "key", nil, versions["key"], time.Hour)
			return err
		}, memstore.Stats{Entries: 1, Bytes: 3}},
		{"delete last", func() error { return s.Delete(ctx, "key") }, memstore.Stats{}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.Stats(); got != st.want {
			t.Fatalf("after %s: Stats() = %+v; want %+v", st.name, got, st.want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		key     string
		size    int
		wantErr bool
	}{
		{"one byte over", "big", 98, true},
		{"far over", "big", 1 << 20, true},
		{"exactly the capacity", "big", 97, false},
		{"the key counts", strings.Repeat("k", 100), 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memstore.New(memstore.WithMaxBytes(100))
			mustSave(t, s, "small", []byte("x"), 0, time.Hour)
			_, err := s.Save(ctx, tt.key, make([]byte, tt.size), 0, time.Hour)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Save of %d bytes into a %d-byte store: %v", len(tt.key)+tt.size, 100, err)
				}
				if got, want := s.Stats(), (memstore.Stats{Entries: 1, Bytes: 100, Evictions: 1}); got != want {
					t.Fatalf("Stats() = %+v; want %+v", got, want)
				}
				return
			}
			if !errors.Is(err, memstore.ErrTooLarge) {
				t.Fatalf("Save of %d bytes into a 100-byte store: err = %v; want ErrTooLarge", len(tt.key)+tt.size, err)
			}
			if got, want := s.Stats(), (memstore.Stats{Entries: 1, Bytes: 6}); got != want {
				t.Fatalf("a refused Save changed the store: Stats() = %+v; want %+v", got, want)
			}
		})
	}
}

func TestTooLargeLeavesExistingEntry(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(memstore.WithMaxBytes(100))
	v := mustSave(t, s, "k", []byte("old"), 0, time.Hour)
	if _, err := s.Save(ctx, "k", make([]byte, 100), v, time.Hour); !errors.Is(err, memstore.ErrTooLarge) {
		t.Fatalf("err = %v; want ErrTooLarge", err)
	}
	data, got, err := s.Load(ctx, "k", 0)
	if err != nil || string(data) != "old" || got != v {
		t.Fatalf("Load = %q, %d, %v; want the old entry, version %d", data, got, err, v)
	}
}

func TestZeroStoreHasDefaultCapacity(t *testing.T) {
	var s memstore.Store
	ctx := context.Background()
	for i := range memstore.DefaultMaxEntries + 1 {
		if _, err := s.Save(ctx, strconv.Itoa(i), nil, 0, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats(); got.Entries != memstore.DefaultMaxEntries || got.Evictions != 1 {
		t.Fatalf("Stats() = %+v; want %d entries and 1 eviction", got, memstore.DefaultMaxEntries)
	}
	if _, _, err := s.Load(ctx, "0", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the first entry was not the one evicted: Load = %v", err)
	}
}

// TestFloodStaysWithinCapacity saves 40,000 sessions, as many anonymous
// visits do, into small stores.
func TestFloodStaysWithinCapacity(t *testing.T) {
	const visits = 40000
	tests := []struct {
		name        string
		maxEntries  int
		maxBytes    int64
		wantEntries int // 0: whatever fits in maxBytes
	}{
		{"entries bound", 1000, memstore.DefaultMaxBytes, 1000},
		{"bytes bound", memstore.DefaultMaxEntries, 256 << 10, 0},
		{"both", 600, 256 << 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := memstore.New(memstore.WithMaxEntries(tt.maxEntries), memstore.WithMaxBytes(tt.maxBytes))
			payload := make([]byte, 500)
			for i := range visits {
				mustSave(t, s, "visitor:"+strconv.Itoa(i), payload, 0, time.Hour)
				if i%1000 == 999 {
					st := s.Stats()
					if st.Entries > tt.maxEntries || st.Bytes > tt.maxBytes {
						t.Fatalf("after %d saves: Stats() = %+v; capacity %d entries, %d bytes",
							i+1, st, tt.maxEntries, tt.maxBytes)
					}
					if st.Entries+int(st.Evictions) != i+1 {
						t.Fatalf("after %d saves: Stats() = %+v; entries and evictions do not add up", i+1, st)
					}
				}
			}
			st := s.Stats()
			if tt.wantEntries != 0 && st.Entries != tt.wantEntries {
				t.Fatalf("Entries = %d; want %d", st.Entries, tt.wantEntries)
			}
			if tt.maxBytes-st.Bytes >= int64(len("visitor:39999")+len(payload)) {
				if st.Entries != tt.maxEntries {
					t.Fatalf("Stats() = %+v: room for another entry, but evicted", st)
				}
			}
			// The latest visitors are the ones kept.
			for i := visits - st.Entries; i < visits; i++ {
				if _, _, err := s.Load(ctx, "visitor:"+strconv.Itoa(i), 0); err != nil {
					t.Fatalf("visitor %d, among the last %d, was evicted: %v", i, st.Entries, err)
				}
			}
		})
	}
}

// TestConcurrentUseUnderPressure runs compare-and-set counters with a long
// ttl while other goroutines flood the store with short-lived entries and
// delete some of them. The counters, renewed on every Load and expiring
// last, are never evicted, so no increment is lost.
func TestConcurrentUseUnderPressure(t *testing.T) {
	const (
		counters   = 4
		increments = 200
		flooders   = 4
		floods     = 3000
	)
	ctx := context.Background()
	s := memstore.New(memstore.WithMaxEntries(64), memstore.WithMaxBytes(4096))
	var wg sync.WaitGroup
	for c := range counters {
		wg.Go(func() {
			for range increments {
				if _, err := storetest.Increment(ctx, s, "counter:"+strconv.Itoa(c%2), 24*time.Hour); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for f := range flooders {
		wg.Go(func() {
			for i := range floods {
				k := fmt.Sprintf("flood:%d:%d", f, i)
				if _, err := s.Save(ctx, k, make([]byte, i%50), 0, time.Minute); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					if err := s.Delete(ctx, fmt.Sprintf("flood:%d:%d", f, i/2)); err != nil {
						t.Error(err)
						return
					}
				}
				if st := s.Stats(); st.Entries > 64 || st.Bytes > 4096 {
					t.Errorf("Stats() = %+v; over capacity", st)
					return
				}
			}
		})
	}
	wg.Wait()
	for c := range 2 {
		data, _, err := s.Load(ctx, "counter:"+strconv.Itoa(c), 0)
		if err != nil {
			t.Fatalf("counter %d: %v", c, err)
		}
		if want := strconv.Itoa(counters / 2 * increments); string(data) != want {
			t.Errorf("counter %d = %s; want %s", c, data, want)
		}
	}
	if s.Stats().Evictions == 0 {
		t.Error("no evictions; the test did not put the store under pressure")
	}
}

func mustSave(t *testing.T, s *memstore.Store, key string, data []byte, version uint64, ttl time.Duration) uint64 {
	t.Helper()
	v, err := s.Save(context.Background(), key, data, version, ttl)
	if err != nil {
		t.Fatalf("Save(%q, version %d): %v", key, version, err)
	}
	return v
}
