package filestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writeEntry writes a session file for key by hand.
func writeEntry(t *testing.T, s *Store, key string, expires time.Time) string {
	t.Helper()
	path, _ := s.locate(key)
	if err := os.WriteFile(path, encode(1, expires.UnixNano(), key, []byte("x")), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(path)
}

// writeFile writes a file that is not a session file, with the given age.
func writeFile(t *testing.T, s *Store, name string, age time.Duration) {
	t.Helper()
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte("not a session"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-age)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range entries {
		if n := e.Name(); len(n) < 6 || n[:6] != ".lock-" {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns
}

func TestSaveSweeps(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	expired := writeEntry(t, s, "expired", now.Add(-time.Second))
	live := writeEntry(t, s, "live", now.Add(time.Hour))
	corrupt, _ := s.locate("corrupt")
	if err := os.WriteFile(corrupt, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s, ".tmp-stale", 2*time.Hour)
	writeFile(t, s, ".tmp-fresh", time.Minute)
	writeFile(t, s, "README", 2*time.Hour)

	if _, err := s.Save(ctx, "new", []byte("x"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	newName := fileName("new")
	want := []string{".tmp-fresh", "README", filepath.Base(corrupt), live, newName}
	slices.Sort(want)
	if got := names(t, s); !slices.Equal(got, want) {
		t.Fatalf("after the first Save the directory holds %q; want %q (%s expired)", got, want, expired)
	}

	// The next pass is a minute away: another expired file stays.
	again := writeEntry(t, s, "expired again", now.Add(-time.Second))
	if _, err := s.Save(ctx, "new", []byte("y"), 0, time.Hour); err == nil {
		t.Fatal("Save(version 0) of a live entry succeeded")
	}
	v, _, err := s.Load(ctx, "live", 0)
	if err != nil || string(v) != "x" {
		t.Fatalf("Load(live) = %q, %v", v, err)
	}
	if _, err := s.Save(ctx, "other", []byte("x"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, again)); err != nil {
		t.Fatalf("a Save within %v of the last pass swept: %v", sweepInterval, err)
	}

	s.sweep.mu.Lock()
	s.sweep.next = time.Now().Add(-time.Nanosecond)
	s.sweep.mu.Unlock()
	if _, err := s.Save(ctx, "third", []byte("x"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, again)); !os.IsNotExist(err) {
		t.Fatalf("a Save after the interval did not sweep: %v", err)
	}
}

// TestSweepIsBounded checks that one Save examines at most sweepBatch
// entries, and that the pass goes on with the next Saves, a second apart.
func TestSweepIsBounded(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const batch = 20
	s.sweep.batch = batch
	past := time.Now().Add(-time.Second)
	const n = batch + batch/2
	for i := range n {
		writeEntry(t, s, fmt.Sprint("expired-", i), past)
	}
	countExpired := func() int {
		t.Helper()
		c := 0
		for _, name := range names(t, s) {
			if isFileName(name) {
				if h, err := readHeader(filepath.Join(s.dir, name)); err == nil && h.expired(time.Now()) {
					c++
				}
			}
		}
		return c
	}
	ctx := context.Background()
	if _, err := s.Save(ctx, "a", nil, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	left := countExpired()
	if left < n-batch || left == n {
		t.Fatalf("after one batch %d of %d expired files are left; want at least 1 removed, at most %d", left, n, batch)
	}
	if _, err := s.Save(ctx, "b", nil, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := countExpired(); got != left {
		t.Fatalf("a Save within %v of the last batch swept: %d expired files left, were %d", batchInterval, got, left)
	}
	s.sweep.mu.Lock()
	if s.sweep.dir == nil {
		t.Fatal("the pass ended after one batch")
	}
	s.sweep.next = time.Now().Add(-time.Nanosecond)
	s.sweep.mu.Unlock()
	if _, err := s.Save(ctx, "c", nil, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := countExpired(); got != 0 {
		t.Fatalf("after the second batch %d expired files are left", got)
	}
	s.sweep.mu.Lock()
	defer s.sweep.mu.Unlock()
	if s.sweep.dir != nil {
		t.Fatal("the pass did not end with the directory")
	}
	if wait := time.Until(s.sweep.next); wait < sweepInterval-10*time.Second {
		t.Fatalf("next pass in %v; want about %v after the start of the last", wait, sweepInterval)
	}
}

func TestDeleteExpired(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	const n = 60
	var live []string
	for i := range n {
		if i%3 == 0 {
			live = append(live, writeEntry(t, s, fmt.Sprint("live-", i), future))
		} else {
			writeEntry(t, s, fmt.Sprint("expired-", i), past)
		}
	}
	writeFile(t, s, ".tmp-stale", 2*time.Hour)
	writeFile(t, s, ".tmp-fresh", time.Second)
	removed, err := s.DeleteExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := n - len(live); removed != want {
		t.Errorf("DeleteExpired removed %d files; want %d", removed, want)
	}
	want := append([]string{".tmp-fresh"}, live...)
	slices.Sort(want)
	if got := names(t, s); !slices.Equal(got, want) {
		t.Fatalf("after DeleteExpired the directory holds %d files; want the %d live ones and .tmp-fresh", len(got), len(live))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	writeEntry(t, s, "expired-late", past)
	if _, err := s.DeleteExpired(ctx); err == nil {
		t.Fatal("DeleteExpired with a canceled context succeeded")
	}
}

func TestFileNameIsSafe(t *testing.T) {
	for _, key := range []string{"", "session:abc", "../../etc/passwd", "a/b", "\x00", "ABC", "abc"} {
		name := fileName(key)
		if !isFileName(name) {
			t.Errorf("fileName(%q) = %q, which isFileName rejects", key, name)
		}
	}
	if fileName("ABC") == fileName("abc") {
		t.Error("keys differing in case share a file name")
	}
	for _, name := range []string{"", ".lock-00", ".tmp-1", "README", fileName("x")[:63], fileName("x") + "0", "G" + fileName("x")[1:]} {
		if isFileName(name) {
			t.Errorf("isFileName(%q) = true", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(1, 2, "key", []byte("payload")))
	f.Add(encode(^uint64(0), -1, "", nil))
	f.Add([]byte("GSF1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := decode(b)
		if err != nil {
			return
		}
		if h.version == 0 {
			t.Fatal("decode accepted version 0")
		}
		if again := encode(h.version, h.expires, string(h.key), payload); string(again) != string(b) {
			t.Fatalf("encode(decode(%q)) = %q", b, again)
		}
	})
}
