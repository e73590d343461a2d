package memcachedstore_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memcachedstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// serverAddr returns the address of the real memcached named by
// GINSESSION_MEMCACHED_ADDR. If it is unset the test is skipped, or fails
// under CI=true, where every backend must be tested.
func serverAddr(t *testing.T) string {
	t.Helper()
	addr := storetest.ServerEnv(t, "GINSESSION_MEMCACHED_ADDR", "127.0.0.1:21211")
	// Fail at once with a clear message if the server is down, rather than
	// with one error per operation.
	s := memcachedstore.New(addr)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := s.Load(ctx, "gstest:ping", 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cannot reach memcached at %s: %v", addr, err)
	}
	return addr
}

// newStore returns a Store on the real server that is closed when the
// test ends.
func newStore(t *testing.T, addr string, opts ...memcachedstore.Option) *memcachedstore.Store {
	s := memcachedstore.New(addr, opts...)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testPrefix returns a key prefix unique to this test run.
func testPrefix(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "gstest:" + hex.EncodeToString(b) + ":"
}

// cleanup deletes keys from s when the test ends.
func cleanup(t *testing.T, s *memcachedstore.Store, keys ...string) {
	t.Cleanup(func() {
		for _, k := range keys {
			if err := s.Delete(context.Background(), k); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

func TestConformance(t *testing.T) {
	s := newStore(t, serverAddr(t))
	// memcached's clock ticks once a second: an entry lives between
	// ceil(ttl) and ceil(ttl)+1 seconds.
	storetest.Run(t, func(t *testing.T) store.Store { return s }, storetest.WithExpirySlack(time.Second))
}

// TestExpiry plays the scenarios of the conformance suite's Expiry subtest
// with memcached's resolution: an entry saved with ttl lives more than
// ceil(ttl) seconds and at most one second longer.
func TestExpiry(t *testing.T) {
	t.Parallel()
	s := newStore(t, serverAddr(t), memcachedstore.WithPrefix(testPrefix(t)))
	ctx := context.Background()
	const (
		short   = time.Second // lives more than 1 s and at most 2 s
		renewed = 3 * time.Second
		check   = 900 * time.Millisecond  // after the first Save
		end     = 2100 * time.Millisecond // after the last Save
	)
	keys := []string{"expires", "renewed", "kept", "sub-second", "longer", "shorter"}
	cleanup(t, s, keys...)
	save := func(key string, version uint64, ttl time.Duration) uint64 {
		t.Helper()
		v, err := s.Save(ctx, key, []byte(key), version, ttl)
		if err != nil {
			t.Fatalf("Save(%s, %v): %v", key, ttl, err)
		}
		return v
	}
	load := func(key string, ttl time.Duration) (uint64, error) {
		t.Helper()
		data, v, err := s.Load(ctx, key, ttl)
		if err == nil && string(data) != key {
			t.Fatalf("Load(%s) = %q", key, data)
		}
		return v, err
	}
	start := time.Now()
	versions := map[string]uint64{}
	for _, k := range []string{"expires", "renewed", "kept", "longer"} {
		versions[k] = save(k, 0, short)
	}
	versions["sub-second"] = save("sub-second", 0, time.Millisecond)
	versions["shorter"] = save("shorter", save("shorter", 0, time.Hour), short)
	saved := time.Now() // entries saved with short are gone by saved + 2 s

	// Every entry lives more than a second after its Save, so all of them
	// must load until start + short. A check that ends later says nothing.
	time.Sleep(check - time.Since(start))
	var early []string
	for _, k := range keys {
		if v, err := load(k, 0); err != nil || v != versions[k] {
			early = append(early, fmt.Sprintf("Load(%s) = version %d, %v; want version %d", k, v, err, versions[k]))
		}
	}
	if v, err := load("renewed", renewed); err != nil || v != versions["renewed"] {
		early = append(early, fmt.Sprintf("renewing Load = version %d, %v; want version %d", v, err, versions["renewed"]))
	}
	if _, err := load("kept", -time.Second); err != nil {
		early = append(early, fmt.Sprintf("Load with a negative ttl: %v", err))
	}
	if v, err := s.Save(ctx, "longer", []byte("longer"), versions["longer"], renewed); err != nil {
		early = append(early, fmt.Sprintf("Save of longer: %v", err))
	} else {
		versions["longer"] = v
	}
	if elapsed := time.Since(start); elapsed >= short {
		t.Skipf("the checks before expiry ended %v after the first Save, too late", elapsed)
	}
	if len(early) > 0 {
		t.Fatalf("before any entry may expire:\n%s", strings.Join(early, "\n"))
	}

	time.Sleep(end - time.Since(saved))
	for _, k := range []string{"expires", "kept", "sub-second", "shorter"} {
		if _, err := load(k, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%s) after %v = %v; want ErrNotFound", k, end, err)
		}
	}
	for _, k := range []string{"renewed", "longer"} {
		if v, err := load(k, 0); err != nil || v != versions[k] {
			t.Errorf("Load(%s) after %v = version %d, %v; want version %d", k, end, v, err, versions[k])
		}
	}
	// An expired entry's version is dead, and the key can be used again.
	if _, err := s.Save(ctx, "expires", nil, versions["expires"], time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Save with the version of an expired entry = %v; want ErrConflict", err)
	}
	if v := save("expires", 0, time.Minute); v == versions["expires"] {
		t.Errorf("recreating an expired entry reused its version %d", v)
	}
}

// rawCommand sends one command line to memcached and returns the reply's
// first line, to look at items behind the store's back.
func rawCommand(t *testing.T, addr, command string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(command + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// remainingTTL returns the seconds memcached says key has left.
func remainingTTL(t *testing.T, addr, key string) int64 {
	t.Helper()
	line := rawCommand(t, addr, "mg "+key+" t")
	for _, f := range strings.Fields(line)[1:] {
		if rest, ok := strings.CutPrefix(f, "t"); ok {
			n, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				t.Fatalf("mg t: %q", line)
			}
			return n
		}
	}
	t.Fatalf("mg %s t = %q; want HD t<seconds>", key, line)
	return 0
}

// TestLongTTL checks ginsession's default Lifetime, 31 days, which
// memcached would read as a Unix time in 1970 if it were sent as seconds.
func TestLongTTL(t *testing.T) {
	t.Parallel()
	addr := serverAddr(t)
	prefix := testPrefix(t)
	s := newStore(t, addr, memcachedstore.WithPrefix(prefix))
	ctx := context.Background()
	const month = 31 * 24 * time.Hour
	cleanup(t, s, "month", "century")

	within := func(what string, got int64, ttl time.Duration) {
		t.Helper()
		want := int64(ttl / time.Second)
		if got < want-2 || got > want+3 {
			t.Errorf("%s: memcached gives the item %d s; want about %d s", what, got, want)
		}
	}
	v, err := s.Save(ctx, "month", []byte("x"), 0, month)
	if err != nil {
		t.Fatal(err)
	}
	if data, lv, err := s.Load(ctx, "month", 0); err != nil || string(data) != "x" || lv != v {
		t.Fatalf("Load after Save with 31 days = %q, %d, %v; want x, %d", data, lv, err, v)
	}
	within("Save with 31 days", remainingTTL(t, addr, prefix+"month"), month)

	if _, err := s.Save(ctx, "month", []byte("y"), v, time.Minute); err != nil {
		t.Fatal(err)
	}
	within("Save with a minute", remainingTTL(t, addr, prefix+"month"), time.Minute)
	if data, _, err := s.Load(ctx, "month", month); err != nil || string(data) != "y" {
		t.Fatalf("renewing Load with 31 days = %q, %v", data, err)
	}
	within("Load renewing to 31 days", remainingTTL(t, addr, prefix+"month"), month)
	if _, _, err := s.Load(ctx, "month", 0); err != nil {
		t.Fatalf("Load after renewing to 31 days: %v", err)
	}

	// A ttl past 2038-01-19 ends then: memcached takes no later expiry.
	if _, err := s.Save(ctx, "century", []byte("z"), 0, 100*365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "century", 0); err != nil {
		t.Fatalf("Load after Save with 100 years: %v", err)
	}
	within("Save with 100 years", remainingTTL(t, addr, prefix+"century"), time.Until(time.Unix(math.MaxInt32, 0)))
	if _, _, err := s.Load(ctx, "century", math.MaxInt64); err != nil {
		t.Fatalf("Load renewing with the longest ttl: %v", err)
	}
	within("Load renewing with the longest ttl", remainingTTL(t, addr, prefix+"century"), time.Until(time.Unix(math.MaxInt32, 0)))
}

// A wireLog records what a Store sends: every command, parsed from the
// bytes written (skipping the data block of ms), and the round trips, each
// a run of writes that a read ends.
type wireLog struct {
	mu         sync.Mutex
	pending    []byte   // written, not yet parsed
	commands   []string // command lines
	roundTrips int
	writing    bool
}

type loggedConn struct {
	net.Conn
	log *wireLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.log.write(p)
	return c.Conn.Write(p)
}

func (c *loggedConn) Read(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writing = false
	c.log.mu.Unlock()
	return c.Conn.Read(p)
}

func (l *wireLog) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.writing {
		l.roundTrips++
		l.writing = true
	}
	l.pending = append(l.pending, p...)
	for {
		line, rest, ok := strings.Cut(string(l.pending), "\r\n")
		if !ok {
			return
		}
		if fields := strings.Fields(line); len(fields) > 2 && fields[0] == "ms" {
			n, err := strconv.Atoi(fields[2])
			if err != nil || len(rest) < n+2 {
				return // wait for the data block
			}
			rest = rest[n+2:]
		}
		l.commands = append(l.commands, line)
		l.pending = []byte(rest)
	}
}

func (l *wireLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, log: l}, nil
}

// take returns the commands and the number of round trips since the last
// call.
func (l *wireLog) take() ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	commands, roundTrips := l.commands, l.roundTrips
	l.commands, l.roundTrips = nil, 0
	return commands, roundTrips
}

// TestRoundTrips proves that each operation is one command, and shows the
// commands.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	addr := serverAddr(t)
	log := &wireLog{}
	prefix := testPrefix(t)
	s := newStore(t, addr, memcachedstore.WithPrefix(prefix), memcachedstore.WithDialer(log.dial))
	ctx := context.Background()
	const key = "session"
	k := prefix + key
	cleanup(t, s, key, "with space")

	step := func(op string, want string, run func() error) {
		t.Helper()
		if err := run(); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		got, roundTrips := log.take()
		if !slices.Equal(got, []string{want}) || roundTrips != 1 {
			t.Fatalf("%s sent %q in %d round trips; want one command, %q, in one", op, got, roundTrips, want)
		}
	}
	notFound := func(err error) error {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("got %v, want ErrNotFound", err)
	}
	conflict := func(err error) error {
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return fmt.Errorf("got %v, want ErrConflict", err)
	}
	var v uint64
	step("Load of a missing key", "mg "+k+" v c T61", func() error {
		_, _, err := s.Load(ctx, key, time.Minute)
		return notFound(err)
	})
	step("Save of a new session", "ms "+k+" 3 c ME T61", func() (err error) {
		v, err = s.Save(ctx, key, []byte("one"), 0, time.Minute)
		return err
	})
	step("Save of a new session that exists", "ms "+k+" 3 c ME T61", func() error {
		_, err := s.Save(ctx, key, []byte("two"), 0, time.Minute)
		return conflict(err)
	})
	step("Load renewing the ttl", "mg "+k+" v c T61", func() error {
		_, _, err := s.Load(ctx, key, time.Minute)
		return err
	})
	step("Load keeping the ttl", "mg "+k+" v c", func() error {
		_, _, err := s.Load(ctx, key, 0)
		return err
	})
	for range 3 {
		step("Save of an existing session", fmt.Sprintf("ms %s 4 c C%d T1801", k, v), func() (err error) {
			v, err = s.Save(ctx, key, []byte("more"), v, 30*time.Minute)
			return err
		})
	}
	big := make([]byte, 300<<10)
	step("Save of a 300 KiB session", fmt.Sprintf("ms %s %d c C%d T61", k, len(big), v), func() (err error) {
		v, err = s.Save(ctx, key, big, v, time.Minute)
		return err
	})
	step("Load of a 300 KiB session", "mg "+k+" v c", func() error {
		data, _, err := s.Load(ctx, key, 0)
		if err == nil && len(data) != len(big) {
			return fmt.Errorf("got %d bytes", len(data))
		}
		return err
	})
	step("Save with a stale version", fmt.Sprintf("ms %s 5 c C%d T61", k, v-1), func() error {
		_, err := s.Save(ctx, key, []byte("stale"), v-1, time.Minute)
		return conflict(err)
	})
	step("Delete", "md "+k, func() error {
		return s.Delete(ctx, key)
	})
	step("Save with the version of a deleted session", fmt.Sprintf("ms %s 4 c C%d T61", k, v), func() error {
		_, err := s.Save(ctx, key, []byte("late"), v, time.Minute)
		return conflict(err)
	})
	step("Delete of a missing session", "md "+k, func() error {
		return s.Delete(ctx, key)
	})

	// A key memcached would refuse goes hashed, with the b flag.
	if _, err := s.Save(ctx, "with space", []byte("x"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, _ := log.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], "ms ") || !strings.HasSuffix(got[0], " 1 b c ME T61") {
		t.Fatalf("Save under a key with a space sent %q; want one ms with the b flag", got)
	}
	hashed := strings.Fields(got[0])[1]
	step("Load under a key with a space", "mg "+hashed+" b v c", func() error {
		_, _, err := s.Load(ctx, "with space", 0)
		return err
	})
	step("Delete under a key with a space", "md "+hashed+" b", func() error {
		return s.Delete(ctx, "with space")
	})
	t.Logf("round trips: Load 1, Save (new) 1, Save (existing) 1, Delete 1")
}

// TestKeys checks that keys memcached takes as they are and keys it would
// refuse both work, and stay apart.
func TestKeys(t *testing.T) {
	t.Parallel()
	addr := serverAddr(t)
	prefix := testPrefix(t)
	s := newStore(t, addr)
	ctx := context.Background()
	keys := []string{
		prefix + "plain",
		prefix + strings.Repeat("x", 250-len(prefix)), // the longest plain key
		prefix + strings.Repeat("x", 251-len(prefix)), // hashed: one byte too long
		prefix + "with space",
		prefix + "new\r\nline",
		prefix + "caf\u00e9",
		prefix + "\x00",
		"",
		prefix + strings.Repeat("y", 10000),
	}
	cleanup(t, s, keys...)
	versions := make([]uint64, len(keys))
	for i, k := range keys {
		v, err := s.Save(ctx, k, []byte(strconv.Itoa(i)), 0, time.Minute)
		if err != nil {
			t.Fatalf("Save(key %d): %v", i, err)
		}
		versions[i] = v
	}
	for i, k := range keys {
		data, v, err := s.Load(ctx, k, time.Minute)
		if err != nil || string(data) != strconv.Itoa(i) || v != versions[i] {
			t.Errorf("Load(key %d) = %q, %d, %v; want %d, %d", i, data, v, err, i, versions[i])
		}
	}
	// Plain keys are stored as they are.
	if got := rawCommand(t, addr, "mg "+keys[1]+" v"); got != "VA 1" {
		t.Errorf("mg of the 250-byte key = %q; want VA 1", got)
	}
	if err := s.Delete(ctx, keys[3]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, keys[3], 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a deleted hashed key = %v", err)
	}
	if _, _, err := s.Load(ctx, keys[4], 0); err != nil {
		t.Errorf("Load of another hashed key after a Delete: %v", err)
	}
}

// TestConcurrentIncrements runs many more writers than connections, each
// incrementing counters by compare-and-set until it wins.
func TestConcurrentIncrements(t *testing.T) {
	t.Parallel()
	s := newStore(t, serverAddr(t), memcachedstore.WithPrefix(testPrefix(t)), memcachedstore.WithMaxConns(4))
	ctx := context.Background()
	const writers, counters, rounds = 32, 3, 5
	for c := range counters {
		cleanup(t, s, "counter"+strconv.Itoa(c))
	}
	var conflicts atomic.Int64
	increment := func(key string) error {
		n, err := storetest.Increment(ctx, s, key, time.Minute)
		conflicts.Add(int64(n))
		return err
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				if err := increment("counter" + strconv.Itoa((w+r)%counters)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for c := range counters {
		data, _, err := s.Load(ctx, "counter"+strconv.Itoa(c), 0)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(data))
		total += n
	}
	if total != writers*rounds {
		t.Fatalf("counters add up to %d after %d increments", total, writers*rounds)
	}
	t.Logf("%d increments, %d lost races", writers*rounds, conflicts.Load())
}

// TestTooLarge checks that a payload over the item size limit is refused
// before it reaches memcached, which would otherwise delete the session.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	addr := serverAddr(t)
	prefix := testPrefix(t)
	s := newStore(t, addr, memcachedstore.WithPrefix(prefix))
	ctx := context.Background()
	cleanup(t, s, "session")
	v, err := s.Save(ctx, "session", []byte("small"), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, memcachedstore.DefaultMaxItemSize)
	_, err = s.Save(ctx, "session", big, v, time.Minute)
	if !errors.Is(err, memcachedstore.ErrTooLarge) {
		t.Fatalf("Save of 1 MiB = %v; want ErrTooLarge", err)
	}
	if data, lv, err := s.Load(ctx, "session", 0); err != nil || string(data) != "small" || lv != v {
		t.Fatalf("Load after a refused Save = %q, %d, %v; want the session unchanged", data, lv, err)
	}
	// Near the limit it still fits.
	fits := big[:memcachedstore.DefaultMaxItemSize-len(prefix+"session")-64]
	if v, err = s.Save(ctx, "session", fits, v, time.Minute); err != nil {
		t.Fatalf("Save of %d bytes: %v", len(fits), err)
	}
	if data, lv, err := s.Load(ctx, "session", 0); err != nil || len(data) != len(fits) || lv != v {
		t.Fatalf("Load of %d bytes = %d bytes, %d, %v; want version %d", len(fits), len(data), lv, err, v)
	}

	// An item larger than the Store's limit does not load: it is corrupt
	// for this Store, which can neither read nor replace it, only delete.
	strict := newStore(t, addr, memcachedstore.WithPrefix(prefix), memcachedstore.WithMaxItemSize(1000))
	if _, _, err := strict.Load(ctx, "session", time.Minute); !errors.Is(err, memcachedstore.ErrCorrupt) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Load of %d bytes with a limit of 1000 = %v; want ErrCorrupt", len(fits), err)
	}
	if _, err := strict.Save(ctx, "session", fits, v, time.Minute); !errors.Is(err, memcachedstore.ErrTooLarge) {
		t.Fatalf("Save of %d bytes with a limit of 1000 = %v; want ErrTooLarge", len(fits), err)
	}
	if _, _, err := strict.Load(ctx, "session", 0); !errors.Is(err, memcachedstore.ErrCorrupt) {
		t.Fatalf("second Load = %v; want ErrCorrupt", err)
	}
	if err := strict.Delete(ctx, "session"); err != nil {
		t.Fatalf("Delete of an item too large to load: %v", err)
	}

	// If the Store is told a larger limit than the server's, memcached
	// refuses the item itself, and deletes what was stored.
	loose := newStore(t, addr, memcachedstore.WithMaxItemSize(4<<20))
	key := testPrefix(t) + "loose"
	cleanup(t, loose, key)
	lv, err := loose.Save(ctx, key, []byte("small"), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loose.Save(ctx, key, make([]byte, 2<<20), lv, time.Minute); !errors.Is(err, memcachedstore.ErrTooLarge) {
		t.Fatalf("Save of 2 MiB past the server's limit = %v; want ErrTooLarge", err)
	}
	if _, _, err := loose.Load(ctx, key, 0); !errors.Is(err, store.ErrNotFound) {
		t.Logf("memcached kept the item after refusing a larger one (Load: %v)", err)
	}
}
