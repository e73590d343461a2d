package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/filestore"
	"github.com/ginsession/ginsession/store/storetest"
)

func newStoreWith(t *testing.T, dir string, opts ...filestore.Option) *filestore.Store {
	t.Helper()
	s, err := filestore.New(dir, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	return s
}

// sessionFiles returns the names of the session files in dir.
func sessionFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); len(n) == 64 && strings.Trim(n, "0123456789abcdef") == "" {
			names = append(names, n)
		}
	}
	return names
}

// TestConformanceWithOptions runs the suite with a bound far above what it
// stores, and another file mode, so that both paths are on.
func TestConformanceWithOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStoreWith(t, dir, filestore.WithMaxEntries(10_000), filestore.WithFileMode(0o660))
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestMaxEntriesEvictsSoonestExpiring plays scripts against a Store that
// keeps at most 3 sessions. Each step is "op key [ttl]":
//
//	save k ttl     Save of a new session
//	resave k ttl   Save of k with its current version
//	renew k ttl    Load of k that renews its expiry
//	other k ttl    the same, by another Store on the directory, as
//	               another process would
//	delete k       Delete of k
//	wait d         sleep, so that short ttls run out
func TestMaxEntriesEvictsSoonestExpiring(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		steps       []string
		wantEvicted []string
	}{{
		name:        "under the bound",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h"},
		wantEvicted: nil,
	}, {
		name:        "the soonest-expiring goes",
		steps:       []string{"save b 2h", "save a 1h", "save c 3h", "save d 4h"},
		wantEvicted: []string{"a"},
	}, {
		name:        "a renewed session stays",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "renew a 5h", "save d 4h"},
		wantEvicted: []string{"b"},
	}, {
		name:        "a session renewed by another process stays",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "other a 5h", "save d 4h"},
		wantEvicted: []string{"b"},
	}, {
		name:        "a session renewed by another process, twice",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "other a 5h", "other b 6h", "save d 4h"},
		wantEvicted: []string{"c"},
	}, {
		name:        "a renewal that shortens moves the session forward",
		steps:       []string{"save a 5h", "save b 2h", "save c 3h", "renew a 1m", "save d 4h"},
		wantEvicted: []string{"a"},
	}, {
		name:        "a session saved again with a later expiry stays",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "resave a 5h", "save d 4h"},
		wantEvicted: []string{"b"},
	}, {
		name:        "the new session is not evicted for itself",
		steps:       []string{"save a 2h", "save b 3h", "save c 4h", "save d 1h"},
		wantEvicted: []string{"a"},
	}, {
		name:        "an expired session goes before live ones",
		steps:       []string{"save a 1h", "save x 1ms", "save b 2h", "wait 5ms", "save d 4h"},
		wantEvicted: []string{"x"},
	}, {
		name:        "saving an existing session evicts nothing",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "resave b 5h", "resave a 1m"},
		wantEvicted: nil,
	}, {
		name:        "a deleted session makes room",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "delete b", "save d 4h"},
		wantEvicted: nil,
	}, {
		name:        "one eviction per new session",
		steps:       []string{"save a 1h", "save b 2h", "save c 3h", "save d 4h", "save e 5h", "save f 30m"},
		wantEvicted: []string{"a", "b", "c"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newStoreWith(t, dir, filestore.WithMaxEntries(3))
			other := newStore(t, dir)
			ctx := context.Background()
			versions := map[string]uint64{}
			for _, step := range tt.steps {
				f := strings.Fields(step)
				var d time.Duration
				if len(f) > 2 {
					var err error
					if d, err = time.ParseDuration(f[2]); err != nil {
						t.Fatal(err)
					}
				}
				var err error
				switch op, k := f[0], f[1]; op {
				case "save", "resave":
					versions[k], err = s.Save(ctx, k, []byte(k), versions[k], d)
				case "renew":
					_, _, err = s.Load(ctx, k, d)
				case "other":
					_, _, err = other.Load(ctx, k, d)
				case "delete":
					err = s.Delete(ctx, k)
					delete(versions, k)
				case "wait":
					d, _ = time.ParseDuration(k)
					time.Sleep(d)
				default:
					t.Fatalf("unknown step %q", step)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			var evicted []string
			for k, v := range versions {
				data, lv, err := s.Load(ctx, k, 0)
				switch {
				case errors.Is(err, store.ErrNotFound):
					evicted = append(evicted, k)
					if _, err := s.Save(ctx, k, []byte("late"), v, time.Hour); !errors.Is(err, store.ErrConflict) {
						t.Errorf("Save of evicted %s with its old version = %v; want ErrConflict", k, err)
					}
				case err != nil:
					t.Errorf("Load(%s): %v", k, err)
				case string(data) != k || lv != v:
					t.Errorf("Load(%s) = %q, version %d; want %q, version %d", k, data, lv, k, v)
				}
			}
			slices.Sort(evicted)
			if !slices.Equal(evicted, tt.wantEvicted) {
				t.Errorf("evicted %q; want %q", evicted, tt.wantEvicted)
			}
			if n := len(sessionFiles(t, dir)); n > 3 {
				t.Errorf("%d session files; want at most 3", n)
			}
		})
	}
}

// TestMaxEntriesAtNew checks that New counts the sessions already in the
// directory, and evicts those over the bound, soonest-expiring first.
func TestMaxEntriesAtNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	free := newStore(t, dir)
	for _, k := range []string{"c", "e", "a", "d", "b"} {
		ttl := time.Duration(k[0]-'a'+1) * time.Hour
		if _, err := free.Save(ctx, k, []byte(k), 0, ttl); err != nil {
			t.Fatal(err)
		}
	}
	corrupt := path(dir, "corrupt")
	if err := os.WriteFile(corrupt, []byte("not a session file"), 0o600); err != nil {
		t.Fatal(err)
	}

	s := newStoreWith(t, dir, filestore.WithMaxEntries(2))
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := s.Load(ctx, k, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%s) = %v; want it evicted by New", k, err)
		}
	}
	for _, k := range []string{"d", "e"} {
		if _, _, err := s.Load(ctx, k, 0); err != nil {
			t.Errorf("Load(%s) = %v; want it kept", k, err)
		}
	}
	if _, err := os.Stat(corrupt); err != nil {
		t.Errorf("New removed a file it did not write: %v", err)
	}
	// The corrupt file does not count: one new session evicts one.
	if _, err := s.Save(ctx, "f", []byte("f"), 0, 6*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "d", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load(d) = %v; want it evicted by the Save of f", err)
	}
	if _, _, err := s.Load(ctx, "e", 0); err != nil {
		t.Errorf("Load(e) = %v; want it kept", err)
	}
}

// TestMaxEntriesOtherStores shows what the documentation says of Stores
// that share the directory: each counts the files it knows of, and a pass
// over the directory (here DeleteExpired) brings the others' in.
func TestMaxEntriesOtherStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := newStoreWith(t, dir, filestore.WithMaxEntries(3))
	other := newStore(t, dir)
	save := func(st *filestore.Store, k string, ttl time.Duration) {
		t.Helper()
		if _, err := st.Save(ctx, k, []byte(k), 0, ttl); err != nil {
			t.Fatal(err)
		}
	}
	count := func(want int) {
		t.Helper()
		if n := len(sessionFiles(t, dir)); n != want {
			t.Fatalf("%d session files; want %d", n, want)
		}
	}
	save(s, "a", 4*time.Hour)
	save(other, "x", time.Hour)
	save(other, "y", 2*time.Hour)
	save(other, "z", 3*time.Hour)
	save(s, "b", 5*time.Hour)
	count(5) // s knows of a and b only

	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	save(s, "c", 6*time.Hour)
	count(3)
	for _, k := range []string{"x", "y", "z"} {
		if _, _, err := other.Load(ctx, k, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%s) = %v; want it evicted", k, err)
		}
	}

	// A session that another Store deletes counts until a pass; after
	// one, the next new session fits without evicting a, the soonest to
	// expire.
	if err := other.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	save(s, "d", 7*time.Hour)
	count(3)
	if _, _, err := s.Load(ctx, "a", 0); err != nil {
		t.Errorf("Load(a) = %v; a session deleted elsewhere still counted after a pass", err)
	}
}

// TestMaxEntriesConcurrentSaves checks that within one Store the bound is
// exact once the Saves have returned, however many race.
func TestMaxEntriesConcurrentSaves(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const limit, goroutines, perGoroutine = 20, 8, 15
	s := newStoreWith(t, dir, filestore.WithMaxEntries(limit))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				k := fmt.Sprintf("g%d-%d", g, i)
				if _, err := s.Save(context.Background(), k, []byte(k), 0, time.Hour+time.Duration(i)*time.Minute); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(sessionFiles(t, dir)); n != limit {
		t.Fatalf("%d session files after %d Saves; want %d", n, goroutines*perGoroutine, limit)
	}
	// The survivors are the latest-expiring: every goroutine's last ones.
	kept := 0
	for g := range goroutines {
		for i := perGoroutine - 2; i < perGoroutine; i++ {
			if _, _, err := s.Load(context.Background(), fmt.Sprintf("g%d-%d", g, i), 0); err == nil {
				kept++
			}
		}
	}
	if kept != 2*goroutines {
		t.Errorf("%d of the %d latest-expiring sessions kept; want all", kept, 2*goroutines)
	}
}
