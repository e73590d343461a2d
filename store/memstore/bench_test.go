package memstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store/memstore"
)

// benchKeys is how many sessions the benchmarks keep live: well under the
// default capacity, so Load and Save of existing keys never evict.
const benchKeys = 10000

// benchPayload is the size of a typical small session (a cart and a flash).
var benchPayload = make([]byte, 256)

// filled returns a Store holding benchKeys entries, with their keys and
// versions.
func filled(b *testing.B) (*memstore.Store, []string, []uint64) {
	b.Helper()
	ctx := context.Background()
	s := memstore.New()
	keys := make([]string, benchKeys)
	versions := make([]uint64, benchKeys)
	for i := range keys {
		keys[i] = "session:" + strconv.Itoa(i)
		v, err := s.Save(ctx, keys[i], benchPayload, 0, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		versions[i] = v
	}
	return s, keys, versions
}

// BenchmarkLoad loads existing entries and renews their expiry, as a
// request with rolling expiry does.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	s, keys, _ := filled(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.Load(ctx, keys[i%benchKeys], time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLoadNoRenew loads existing entries without touching their
// expiry.
func BenchmarkLoadNoRenew(b *testing.B) {
	ctx := context.Background()
	s, keys, _ := filled(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.Load(ctx, keys[i%benchKeys], 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSave overwrites existing entries with compare-and-set, as the
// commit of a changed session does.
func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	s, keys, versions := filled(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % benchKeys
		v, err := s.Save(ctx, keys[k], benchPayload, versions[k], time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		versions[k] = v
		i++
	}
}

// BenchmarkSaveNew creates a new entry each time, as the first write of a
// new visitor's session does. With a bounded store this runs at capacity
// once b.N passes it, so it includes the cost of eviction.
func BenchmarkSaveNew(b *testing.B) {
	ctx := context.Background()
	s := memstore.New()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Save(ctx, "session:"+strconv.Itoa(i), benchPayload, 0, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLoadParallel loads and renews entries from every P at once.
func BenchmarkLoadParallel(b *testing.B) {
	ctx := context.Background()
	s, keys, _ := filled(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, err := s.Load(ctx, keys[i%benchKeys], time.Hour); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}
