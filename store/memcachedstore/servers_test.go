package memcachedstore_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ginsession/ginsession/store/memcachedstore"
)

// sessionKeys returns n keys as ginsession forms them: "session:" and a
// 43-character ID, from a fixed seed so that a failure can be replayed.
func sessionKeys(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, n)
	id := make([]byte, 32)
	for i := range keys {
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		keys[i] = "session:" + base64.RawURLEncoding.EncodeToString(id)
	}
	return keys
}

// placement returns, for each key, the server of s that holds it.
func placement(s *memcachedstore.Store, keys []string) []string {
	servers := make([]string, len(keys))
	for i, k := range keys {
		servers[i] = memcachedstore.ServerFor(s, k)
	}
	return servers
}

func newServers(t *testing.T, addrs []string, opts ...memcachedstore.Option) *memcachedstore.Store {
	t.Helper()
	s, err := memcachedstore.NewServers(addrs, opts...)
	if err != nil {
		t.Fatalf("NewServers(%q): %v", addrs, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestNewServersErrors(t *testing.T) {
	for _, tt := range []struct {
		addrs []string
		want  string // "" for no error
	}{
		{nil, "memcachedstore: no server addresses"},
		{[]string{}, "memcachedstore: no server addresses"},
		{[]string{""}, "memcachedstore: an empty server address"},
		{[]string{"a:1", "", "b:1"}, "memcachedstore: an empty server address"},
		{[]string{"a:1", "b:1", "a:1"}, `memcachedstore: server address "a:1" listed twice`},
		{[]string{"a:1"}, ""},
		{[]string{"a:1", "a:2", "b:1"}, ""},
	} {
		s, err := memcachedstore.NewServers(tt.addrs)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("NewServers(%q) = %v", tt.addrs, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want || s != nil):
			t.Errorf("NewServers(%q) = %v, %v; want the error %q", tt.addrs, s, err, tt.want)
		}
		if s != nil {
			_ = s.Close()
		}
	}
}

// TestServersDistribution checks that keys spread evenly: with n servers,
// each gets between 0.6/n and 1.4/n of 3000 keys (the standard deviation
// is under 1% of the keys), whatever the addresses look like.
func TestServersDistribution(t *testing.T) {
	keys := sessionKeys(3000)
	for _, addrs := range [][]string{
		{"127.0.0.1:21211", "127.0.0.1:21212", "127.0.0.1:21213"},
		{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"},
		{"cache-a.internal:11211", "cache-b.internal:11211", "cache-c.internal:11211"},
		{"a:1", "b:1"},
		{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211", "10.0.0.5:11211"},
	} {
		s := newServers(t, addrs)
		count := map[string]int{}
		for _, srv := range placement(s, keys) {
			count[srv]++
		}
		n := float64(len(addrs))
		var shares []string
		for _, a := range addrs {
			share := float64(count[a]) / float64(len(keys))
			shares = append(shares, fmt.Sprintf("%s %.1f%%", a, 100*share))
			if share < 0.6/n || share > 1.4/n {
				t.Errorf("%s holds %d of %d keys (%.1f%%); want %.0f%% to %.0f%%",
					a, count[a], len(keys), 100*share, 60/n, 140/n)
			}
		}
		t.Logf("%d keys over %d servers: %s", len(keys), len(addrs), strings.Join(shares, ", "))
	}
}

// TestServersStability checks that changing the list of servers moves
// only the keys it must: those of a removed server, and those that go to
// an added one.
func TestServersStability(t *testing.T) {
	keys := sessionKeys(3000)
	base := []string{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"}
	before := placement(newServers(t, base), keys)
	for _, tt := range []struct {
		name    string
		addrs   []string
		removed string // the server taken out, if any
		added   string // the server put in, if any
	}{
		{name: "same servers in another order", addrs: []string{base[2], base[0], base[1]}},
		{name: "first removed", addrs: base[1:], removed: base[0]},
		{name: "second removed", addrs: []string{base[0], base[2]}, removed: base[1]},
		{name: "last removed", addrs: base[:2], removed: base[2]},
		{name: "one added", addrs: append(slices.Clone(base), "10.0.0.4:11211"), added: "10.0.0.4:11211"},
		{name: "one added in front", addrs: append([]string{"10.0.0.9:11211"}, base...), added: "10.0.0.9:11211"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			after := placement(newServers(t, tt.addrs), keys)
			moved := 0
			for i, k := range keys {
				if before[i] == after[i] {
					continue
				}
				moved++
				switch {
				case tt.removed != "" && before[i] != tt.removed:
					t.Fatalf("key %s moved from %s to %s, though only %s was removed", k, before[i], after[i], tt.removed)
				case tt.added != "" && after[i] != tt.added:
					t.Fatalf("key %s moved from %s to %s, though only %s was added", k, before[i], after[i], tt.added)
				case tt.removed == "" && tt.added == "":
					t.Fatalf("key %s moved from %s to %s with the same servers", k, before[i], after[i])
				}
			}
			if want := countOf(before, tt.removed); tt.removed != "" && moved != want {
				t.Errorf("%d keys moved; want the %d that were on %s", moved, want, tt.removed)
			}
			if tt.added != "" {
				// The new server takes its share, a quarter: 750 ± 24.
				if share := float64(moved) / float64(len(keys)); share < 0.15 || share > 0.35 {
					t.Errorf("%d keys (%.1f%%) moved to %s; want about a quarter", moved, 100*share, tt.added)
				}
			}
			t.Logf("%d of %d keys moved", moved, len(keys))
		})
	}
}

func countOf(servers []string, addr string) int {
	n := 0
	for _, s := range servers {
		if s == addr {
			n++
		}
	}
	return n
}
