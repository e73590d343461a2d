// Package storetest is the conformance suite for implementations of
// store.Store.
//
// Every store in this module runs it against its real backend. A new store
// adds a test that hands Run a constructor:
//
//	func TestConformance(t *testing.T) {
//		client := connect(t) // skip or fail if the server is not configured
//		storetest.Run(t, func(t *testing.T) store.Store {
//			return mystore.New(client)
//		})
//	}
//
// Run calls newStore once per subtest, with that subtest's *testing.T, so
// the constructor may register its own t.Cleanup; it may also return the
// same Store every time. The suite writes only keys under a random prefix
// ("gstest:<hex>:") and deletes each key it creates when its subtest ends,
// so it can run against a server that other programs, or other runs of the
// suite, use at the same time. It never empties a database.
//
// The subtests run in parallel. The Expiry subtest plays all its scenarios
// on one timeline: it saves entries with a one-second ttl, renews some after
// half a second, and checks them about 2.2 seconds after the start, in real
// time. The margin lets a store round ttl up to a whole second, but not
// further. A backend with a simulated clock, such as miniredis, passes
// WithClock. The whole suite takes under three seconds.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
)

// An Option changes how Run exercises a store.
type Option func(*config)

type config struct {
	advance func(time.Duration) // nil: real time
	slack   time.Duration
}

// WithClock tells Run that time passes for the store only when advance is
// called, as with miniredis's FastForward. Run then calls advance instead
// of sleeping, and runs the Expiry subtest before the parallel ones, so
// that moving the shared clock never disturbs another subtest.
func WithClock(advance func(d time.Duration)) Option {
	return func(c *config) { c.advance = advance }
}

// WithExpirySlack tells Run that the store may keep an entry up to d
// longer than ttl rounded up to a whole second, as memcached does, whose
// clock ticks once a second. The Expiry subtest then checks that entries
// are gone d later than it otherwise would.
func WithExpirySlack(d time.Duration) Option {
	return func(c *config) { c.slack = d }
}

// longTTL is the ttl of entries that must not expire during the suite.
const longTTL = time.Minute

// A testCase is one subtest. A timed case waits for entries to expire.
type testCase struct {
	name  string
	timed bool
	run   func(e *env)
}

var cases = []testCase{
	{name: "LoadMissing", run: testLoadMissing},
	{name: "SaveCreates", run: testSaveCreates},
	{name: "CreateExisting", run: testCreateExisting},
	{name: "SaveCurrentVersion", run: testSaveCurrentVersion},
	{name: "SaveStaleVersion", run: testSaveStaleVersion},
	{name: "SaveMissingWithVersion", run: testSaveMissingWithVersion},
	{name: "Delete", run: testDelete},
	{name: "RecreateAfterDelete", run: testRecreateAfterDelete},
	{name: "Expiry", timed: true, run: testExpiry},
	{name: "SaveCopiesData", run: testSaveCopiesData},
	{name: "LoadReturnsCopy", run: testLoadReturnsCopy},
	{name: "BinaryPayloads", run: testBinaryPayloads},
	{name: "KeysIndependent", run: testKeysIndependent},
	{name: "CanceledContext", run: testCanceledContext},
	{name: "ConcurrentCompareAndSet", run: testConcurrentCompareAndSet},
	{name: "ConcurrentAppend", run: testConcurrentAppend},
}

// Run runs the conformance suite as subtests of t. newStore returns the
// store to test; see the package documentation.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	prefix := "gstest:" + randomHex(t) + ":"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.timed || cfg.advance == nil {
				t.Parallel()
			}
			tc.run(&env{
				t:       t,
				s:       newStore(t),
				prefix:  prefix + tc.name + ":",
				advance: cfg.advance,
				slack:   cfg.slack,
			})
		})
	}
}

func randomHex(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("storetest: random prefix: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// env is what one subtest works with.
type env struct {
	t       *testing.T
	s       store.Store
	prefix  string
	advance func(time.Duration)
	slack   time.Duration // see WithExpirySlack
}

// key returns a key unique to this run and subtest, and deletes it when the
// subtest ends.
func (e *env) key(name string) string {
	k := e.prefix + name
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.s.Delete(ctx, k); err != nil {
			e.t.Errorf("cleanup: Delete(%q): %v", k, err)
		}
	})
	return k
}

// sub returns an env for a part of this subtest, with keys of its own.
func (e *env) sub(name string) *env {
	c := *e
	c.prefix += name + ":"
	return &c
}

// wait lets d pass for the store.
func (e *env) wait(d time.Duration) {
	if e.advance != nil {
		e.advance(d)
		return
	}
	time.Sleep(d)
}

// save saves and fails the test unless Save succeeds with a valid version.
func (e *env) save(key string, data []byte, version uint64, ttl time.Duration) uint64 {
	e.t.Helper()
	v, err := e.s.Save(context.Background(), key, data, version, ttl)
	if err != nil {
		e.t.Fatalf("Save(%q, version %d): %v", key, version, err)
	}
	if v == 0 || v == version {
		e.t.Fatalf("Save(%q, version %d) returned version %d; want non-zero and different", key, version, v)
	}
	return v
}

// saveConflict fails the test unless Save returns ErrConflict.
func (e *env) saveConflict(key string, data []byte, version uint64) {
	e.t.Helper()
	v, err := e.s.Save(context.Background(), key, data, version, longTTL)
	if !errors.Is(err, store.ErrConflict) {
		e.t.Fatalf("Save(%q, version %d) = %d, %v; want ErrConflict", key, version, v, err)
	}
}

// load loads and fails the test unless Load succeeds.
func (e *env) load(key string, ttl time.Duration) ([]byte, uint64) {
	e.t.Helper()
	data, v, err := e.s.Load(context.Background(), key, ttl)
	if err != nil {
		e.t.Fatalf("Load(%q): %v", key, err)
	}
	if v == 0 {
		e.t.Fatalf("Load(%q) returned version 0 for an existing entry", key)
	}
	return data, v
}

// loadMissing fails the test unless Load returns ErrNotFound.
func (e *env) loadMissing(key string, ttl time.Duration) {
	e.t.Helper()
	data, v, err := e.s.Load(context.Background(), key, ttl)
	if !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("Load(%q) = %q, %d, %v; want ErrNotFound", key, data, v, err)
	}
}

// expect fails the test unless key holds data at version.
func (e *env) expect(key string, data []byte, version uint64) {
	e.t.Helper()
	got, v := e.load(key, 0)
	if !bytes.Equal(got, data) {
		e.t.Fatalf("Load(%q) data = %s; want %s", key, summary(got), summary(data))
	}
	if v != version {
		e.t.Fatalf("Load(%q) version = %d; want %d", key, v, version)
	}
}

// summary shows short payloads whole and long ones by length.
func summary(b []byte) string {
	if len(b) <= 64 {
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("%x... (%d bytes)", b[:32], len(b))
}

// ServerEnv returns the value of the environment variable name, which
// names a real server for a store's tests (example shows its form). If it
// is unset the test is skipped with a message naming the variable, except
// under CI=true, where every store must be tested against its server and
// the test fails instead.
func ServerEnv(t testing.TB, name, example string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set; CI must test against a real server (e.g. %s=%s)", name, name, example)
	}
	t.Skipf("set %s (e.g. %s) to test against a real server", name, example)
	return ""
}

// Increment adds one to a decimal counter stored under key, with a
// Load/compare-and-set loop that retries on store.ErrConflict, as a
// session commit does. It returns how many races it lost. Stores use it
// in their own concurrency tests.
func Increment(ctx context.Context, s store.Store, key string, ttl time.Duration) (conflicts int, err error) {
	const maxAttempts = 10000
	for range maxAttempts {
		data, v, err := s.Load(ctx, key, ttl)
		n := 0
		switch {
		case errors.Is(err, store.ErrNotFound):
			v = 0
		case err != nil:
			return conflicts, fmt.Errorf("load: %w", err)
		default:
			if n, err = strconv.Atoi(string(data)); err != nil {
				return conflicts, fmt.Errorf("load returned %q: %w", data, err)
			}
		}
		_, err = s.Save(ctx, key, strconv.AppendInt(nil, int64(n+1), 10), v, ttl)
		if err == nil {
			return conflicts, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return conflicts, fmt.Errorf("save: %w", err)
		}
		conflicts++
	}
	return conflicts, fmt.Errorf("no successful Save in %d attempts", maxAttempts)
}
