package filestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/filestore"
	"github.com/ginsession/ginsession/store/storetest"
)

func newStore(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.New(dir)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	s := newStore(t, t.TempDir()) // one Store for all subtests, as in a real program
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestConformanceStorePerSubtest gives every subtest a Store of its own on
// one shared directory, as separate processes would have.
func TestConformanceStorePerSubtest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, dir) })
}

// path returns the file that holds key in dir: the documented layout.
func path(dir, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(sum[:]))
}

// fileContents builds a session file by hand, following the documented
// format.
func fileContents(version uint64, expires time.Time, key string, payload string) []byte {
	b := []byte("GSF1")
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	return append(b, payload...)
}

func TestFileFormat(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ctx := context.Background()
	const key = "session:a/b\\c:\x00\xff"
	before := time.Now()
	v, err := s.Save(ctx, key, []byte("payload"), 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path(dir, key))
	if err != nil {
		t.Fatalf("the session file is not where the documentation says: %v", err)
	}
	if want := fileContents(v, time.Time{}, key, "payload"); !bytes.Equal(raw[:12], want[:12]) || !bytes.Equal(raw[20:], want[20:]) {
		t.Fatalf("file = %q; want magic, version %d, expiry, key and payload", raw, v)
	}
	exp := time.Unix(0, int64(binary.BigEndian.Uint64(raw[12:])))
	if exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour)) {
		t.Fatalf("expiry = %v; want an hour after the Save", exp)
	}
	info, err := os.Stat(path(dir, key))
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("session file mode = %v; want 0600", mode)
	}

	// A renewing Load rewrites the expiry and nothing else.
	if _, _, err := s.Load(ctx, key, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	renewed, err := os.ReadFile(path(dir, key))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(renewed[:12], raw[:12]) || !bytes.Equal(renewed[20:], raw[20:]) {
		t.Fatalf("a renewing Load changed more than the expiry: %q became %q", raw, renewed)
	}
	if exp2 := time.Unix(0, int64(binary.BigEndian.Uint64(renewed[12:]))); exp2.Sub(exp) < 59*time.Minute {
		t.Fatalf("expiry after Load(2h) = %v; want about an hour later than %v", exp2, exp)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); name != filepath.Base(path(dir, key)) && !strings.HasPrefix(name, ".lock-") {
			t.Errorf("unexpected file %q in the directory", name)
		}
	}
}

func TestNewCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "sessions")
	newStore(t, dir)
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o700 {
		t.Errorf("directory mode = %v; want 0700", mode)
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file, filepath.Join(file, "sub")} {
		if s, err := filestore.New(dir); err == nil || s != nil {
			t.Errorf("New(%q) = %v, %v; want an error", dir, s, err)
		} else if !strings.HasPrefix(err.Error(), "filestore: ") {
			t.Errorf("New(%q) error %q lacks the filestore: prefix", dir, err)
		}
	}
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(context.Background(), "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if _, err := os.Stat(path(dir, "k")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a rejected Save left a file: %v", err)
	}
}

func TestExpiredFileIsRemovedOnLoad(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ctx := context.Background()
	const key = "k"
	if err := os.WriteFile(path(dir, key), fileContents(7, time.Now().Add(-time.Second), key, "old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, key, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of an expired file = %v; want ErrNotFound", err)
	}
	if _, err := os.Stat(path(dir, key)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load left the expired file: %v", err)
	}
	// Its version stays dead.
	if _, err := s.Save(ctx, key, []byte("late"), 7, time.Hour); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save with the expired version = %v; want ErrConflict", err)
	}
}

// TestCorruptFiles checks that files this package did not write give a
// clear error wrapping ErrCorrupt on Load, never a panic or another key's
// data; that Save treats them as conflicts; and that Delete removes them.
func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ctx := context.Background()
	live := time.Now().Add(time.Hour)
	for name, contents := range map[string][]byte{
		"empty":        {},
		"short":        []byte("GSF1\x00\x00"),
		"other-format": []byte(strings.Repeat("x", 64)),
		"version-0":    fileContents(0, live, "corrupt-version-0", "payload"),
		"key-too-long": fileContents(1, live, "corrupt-key-too-long", "")[:30],
		"huge-key-len": append(fileContents(1, live, "", "")[:20], 0xff, 0xff, 0xff, 0xff),
		"other-key":    fileContents(1, live, "someone else", "their data"),
	} {
		key := "corrupt-" + name
		if err := os.WriteFile(path(dir, key), contents, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, ttl := range []time.Duration{0, time.Minute} {
			data, v, err := s.Load(ctx, key, ttl)
			if !errors.Is(err, filestore.ErrCorrupt) || errors.Is(err, store.ErrNotFound) || data != nil || v != 0 {
				t.Errorf("%s: Load(ttl %v) = %q, %d, %v; want ErrCorrupt", name, ttl, data, v, err)
			} else if !strings.HasPrefix(err.Error(), "filestore: corrupt session file: ") {
				t.Errorf("%s: Load error %q does not say what is wrong", name, err)
			} else if strings.Contains(err.Error(), key) {
				t.Errorf("%s: Load error %q contains the key", name, err)
			}
		}
		for _, version := range []uint64{0, 1} {
			if _, err := s.Save(ctx, key, []byte("x"), version, time.Minute); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: Save(version %d) = %v; want ErrConflict", name, version, err)
			}
		}
		if got, err := os.ReadFile(path(dir, key)); err != nil || !bytes.Equal(got, contents) {
			t.Errorf("%s: the file changed: %q, %v", name, got, err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("%s: Delete: %v", name, err)
		}
		if _, _, err := s.Load(ctx, key, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Load after Delete = %v; want ErrNotFound", name, err)
		}
	}
}

func TestUnreadableDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	s := newStore(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := s.Load(ctx, "k", 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load with the directory gone = %v; want an error other than ErrNotFound", err)
	}
	if _, err := s.Save(ctx, "k", []byte("x"), 0, time.Minute); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("Save with the directory gone = %v; want an error other than ErrConflict", err)
	}
	if err := s.Delete(ctx, "k"); err == nil {
		t.Errorf("Delete with the directory gone succeeded")
	}
}

func loadCounter(t *testing.T, s store.Store, key string) int {
	t.Helper()
	data, _, err := s.Load(context.Background(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatalf("counter holds %q", data)
	}
	return n
}

// TestStoresShareDirectory races goroutines of two Store values on one
// directory. They share no memory, so only the file locks keep them from
// losing each other's increments.
func TestStoresShareDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stores := []*filestore.Store{newStore(t, dir), newStore(t, dir)}
	const perStore, increments = 8, 25
	var wg sync.WaitGroup
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				for range increments {
					if _, err := storetest.Increment(context.Background(), s, "counter", time.Minute); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if n, want := loadCounter(t, stores[0], "counter"), len(stores)*perStore*increments; n != want {
		t.Fatalf("counter = %d after %d increments", n, want)
	}
}

// childEnv names the directory in which a child process of
// TestProcessesShareDirectory increments the counter.
const childEnv = "GINSESSION_FILESTORE_CHILD_DIR"

// TestProcessesShareDirectory runs this test binary twice more as child
// processes, which increment one counter together with this process.
func TestProcessesShareDirectory(t *testing.T) {
	const goroutines, increments = 4, 25
	run := func(dir string) error {
		s, err := filestore.New(dir)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				for range increments {
					if _, err := storetest.Increment(context.Background(), s, "counter", time.Minute); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	if dir := os.Getenv(childEnv); dir != "" {
		if err := run(dir); err != nil {
			t.Fatal(err)
		}
		return
	}

	t.Parallel()
	dir := t.TempDir()
	const children = 2
	var wg sync.WaitGroup
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProcessesShareDirectory$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, out)
			}
		})
	}
	if err := run(dir); err != nil {
		t.Error(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n, want := loadCounter(t, newStore(t, dir), "counter"), (children+1)*goroutines*increments; n != want {
		t.Fatalf("counter = %d after %d increments by %d processes", n, want, children+1)
	}
}

func TestCanceledWaitForLock(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	// Hold the lock of every stripe from another Store, as another process
	// would, so that s must wait.
	other := newStore(t, dir)
	ctx := context.Background()
	if _, err := other.Save(ctx, "k", []byte("x"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	done := filestore.HoldAllLocks(t, other)
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := s.Load(ctx, "k", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load while another process holds the lock = %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Load returned %v after its context ended", d)
	}
}
