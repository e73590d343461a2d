package memstore

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// checkInvariants fails the test unless the map, the heap and the byte
// count agree with each other and with the capacity.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	if len(s.entries) != len(s.heap) {
		t.Fatalf("map holds %d entries, heap %d", len(s.entries), len(s.heap))
	}
	var total int64
	for i, e := range s.heap {
		if e.index != i {
			t.Fatalf("heap[%d] (%q) has index %d", i, e.key, e.index)
		}
		if s.entries[e.key] != e {
			t.Fatalf("heap[%d] (%q) is not the map's entry for its key", i, e.key)
		}
		if i > 0 && e.expires < s.heap[(i-1)/2].expires {
			t.Fatalf("heap[%d] (%q) expires before its parent", i, e.key)
		}
		total += e.size()
	}
	if total != s.bytes {
		t.Fatalf("bytes = %d; entries hold %d", s.bytes, total)
	}
	maxEntries, maxBytes := s.limits()
	if len(s.heap) > maxEntries || s.bytes > maxBytes {
		t.Fatalf("%d entries of %d bytes; capacity is %d entries, %d bytes", len(s.heap), s.bytes, maxEntries, maxBytes)
	}
}

// expire makes the entry under key expired, as if its time had passed.
func expire(s *Store, key string) {
	e := s.entries[key]
	e.expires = now() - 1
	s.fix(e.index)
}

func TestSaveDropsExpiredEntries(t *testing.T) {
	ctx := context.Background()
	s := New()
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, err := s.Save(ctx, k, []byte("xyz"), 0, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	expire(s, "b")
	expire(s, "d")
	if _, err := s.Save(ctx, "e", []byte("xyz"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
	if got, want := keys(s), []string{"a", "c", "e"}; !slices.Equal(got, want) {
		t.Fatalf("after Save, keys = %q; want %q", got, want)
	}
	if st := s.Stats(); st.Evictions != 0 {
		t.Fatalf("Evictions = %d; expired entries were counted as evicted", st.Evictions)
	}
}

func TestStatsCountsOnlyLiveEntries(t *testing.T) {
	ctx := context.Background()
	var s Store
	for _, k := range []string{"a", "b"} {
		if _, err := s.Save(ctx, k, []byte("xyz"), 0, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	expire(&s, "a")
	if got, want := s.Stats(), (Stats{Entries: 1, Bytes: 4}); got != want {
		t.Fatalf("Stats() = %+v; want %+v", got, want)
	}
	checkInvariants(t, &s)
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	s := New()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(context.Background(), "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if len(s.entries) != 0 {
		t.Fatalf("entries = %v after rejected Saves", keys(s))
	}
}

func TestExpirySaturates(t *testing.T) {
	s := New()
	ctx := context.Background()
	if _, err := s.Save(ctx, "k", []byte("x"), 0, time.Duration(1<<63-1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "k", time.Duration(1<<63-1)); err != nil {
		t.Fatalf("an entry saved with the longest ttl did not load: %v", err)
	}
}

// TestRandomOperations checks the heap and the byte count after every one
// of many random operations on a small Store, and that whatever a Save
// evicts expires no later than whatever it keeps.
func TestRandomOperations(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	s := New(WithMaxEntries(20), WithMaxBytes(600))
	versions := map[string]uint64{}
	for i := range 20000 {
		key := "k" + strconv.Itoa(rng.IntN(40))
		ttl := time.Duration(1+rng.IntN(1000)) * time.Minute
		switch op := rng.IntN(10); {
		case op < 5:
			before := map[string]int64{}
			for k, e := range s.entries {
				before[k] = e.expires
			}
			v, err := s.Save(ctx, key, make([]byte, rng.IntN(80)), versions[key], ttl)
			if err != nil {
				delete(versions, key) // evicted since we last saw it
				continue
			}
			versions[key] = v
			var gone, kept []int64
			for k, exp := range before {
				if k == key {
					continue
				}
				if _, ok := s.entries[k]; ok {
					kept = append(kept, exp)
				} else {
					gone = append(gone, exp)
				}
			}
			if len(gone) > 0 && len(kept) > 0 && slices.Max(gone) > slices.Min(kept) {
				t.Fatalf("op %d: Save(%q) evicted an entry expiring at %d but kept one expiring at %d",
					i, key, slices.Max(gone), slices.Min(kept))
			}
		case op < 8:
			if _, v, err := s.Load(ctx, key, ttl*time.Duration(rng.IntN(2))); err == nil {
				versions[key] = v
			} else {
				delete(versions, key)
			}
		case op < 9:
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			delete(versions, key)
		default:
			if _, ok := s.entries[key]; ok {
				expire(s, key)
			}
		}
		checkInvariants(t, s)
	}
	if s.evictions == 0 {
		t.Fatal("no Save evicted anything; the test does not exercise eviction")
	}
}

func keys(s *Store) []string {
	var ks []string
	for k := range s.entries {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
