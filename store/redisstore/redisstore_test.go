package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// A backend is a Redis server to test against. advance is set when the
// server's clock is simulated.
type backend struct {
	client  redis.UniversalClient
	advance func(time.Duration)
}

// forEachBackend runs test, in parallel, against miniredis and against the
// real Redis and Redis Cluster named by the environment. Each gets a client
// of its own.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		mr := miniredis.RunT(t)
		test(t, backend{client: newClient(t, &redis.Options{Addr: mr.Addr()}), advance: mr.FastForward})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		opts, err := redis.ParseURL(storetest.ServerEnv(t, "GINSESSION_REDIS_URL", "redis://127.0.0.1:6379/9"))
		if err != nil {
			t.Fatalf("GINSESSION_REDIS_URL: %v", err)
		}
		test(t, backend{client: newClient(t, opts)})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		addrs := strings.Split(storetest.ServerEnv(t, "GINSESSION_REDIS_CLUSTER_ADDRS", "127.0.0.1:30001,127.0.0.1:30002"), ",")
		client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = client.Close() })
		ping(t, client)
		test(t, backend{client: client})
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		test(t, backend{client: newFailoverClient(t)})
	})
}

// sentinelEnv returns the Sentinel addresses and the master name from the
// environment (.ci/sentinel.bash starts them and sets both).
func sentinelEnv(t *testing.T) (addrs []string, master string) {
	t.Helper()
	addrs = strings.Split(storetest.ServerEnv(t, "GINSESSION_REDIS_SENTINEL_ADDRS", "127.0.0.1:30026"), ",")
	master = storetest.ServerEnv(t, "GINSESSION_REDIS_SENTINEL_MASTER", "ginsession")
	return addrs, master
}

// newFailoverClient returns a client that finds the master through
// Sentinel, as redis.NewUniversalClient does when given a master name.
func newFailoverClient(t *testing.T) *redis.Client {
	t.Helper()
	addrs, master := sentinelEnv(t)
	client := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs})
	t.Cleanup(func() { _ = client.Close() })
	ping(t, client)
	return client
}

func newClient(t *testing.T, opts *redis.Options) *redis.Client {
	t.Helper()
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ping(t, client)
	return client
}

// ping fails the test at once with a clear message if the server is down,
// rather than with one error per operation of the suite.
func ping(t testing.TB, client redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("cannot reach the Redis server: %v", err)
	}
}

// testPrefix returns a key prefix unique to this test run.
func testPrefix(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "gstest:" + hex.EncodeToString(b) + ":"
}

func TestConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var opts []storetest.Option
		if b.advance != nil {
			opts = append(opts, storetest.WithClock(b.advance))
		}
		s := redisstore.New(b.client)
		storetest.Run(t, func(*testing.T) store.Store { return s }, opts...)
	})
}

// commandLog is a go-redis hook that records the name of every command the
// client sends, so a test can count round trips.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			l.add("pipelined " + cmd.Name())
		}
		return next(ctx, cmds)
	}
}

func (l *commandLog) add(name string) {
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
}

// take returns the commands recorded since the last call.
func (l *commandLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := l.names
	l.names = nil
	return names
}

// TestRoundTrips proves that each operation is a single command, apart from
// the one EVAL that caches the compare-and-set script on a server that does
// not have it yet.
func TestRoundTrips(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		log := &commandLog{}
		b.client.AddHook(log)
		s := redisstore.New(b.client, redisstore.WithPrefix(testPrefix(t)))
		ctx := context.Background()
		const key = "session"
		t.Cleanup(func() { _ = s.Delete(context.Background(), key) })

		// The connection handshake may pass through the hook; get it done.
		if _, _, err := s.Load(ctx, "warm-up", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load of a missing key: %v", err)
		}
		log.take()

		evalFallbacks := 0
		step := func(op string, want []string, run func() error) {
			t.Helper()
			if err := run(); err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			got := log.take()
			if slices.Equal(got, []string{"evalsha", "eval"}) && want[0] == "evalsha" {
				evalFallbacks++
				got = got[:1]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s sent %q; want %q", op, got, want)
			}
		}
		var v uint64
		step("Load of a missing key", []string{"getex"}, func() error {
			_, _, err := s.Load(ctx, key, time.Minute)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		})
		step("Save of a new session", []string{"set"}, func() (err error) {
			v, err = s.Save(ctx, key, []byte("one"), 0, time.Minute)
			return err
		})
		step("Load renewing the ttl", []string{"getex"}, func() error {
			_, _, err := s.Load(ctx, key, time.Minute)
			return err
		})
		step("Load keeping the ttl", []string{"get"}, func() error {
			_, _, err := s.Load(ctx, key, 0)
			return err
		})
		for range 3 {
			step("Save of an existing session", []string{"evalsha"}, func() (err error) {
				v, err = s.Save(ctx, key, []byte("more"), v, time.Minute)
				return err
			})
		}
		step("Save with a stale version", []string{"evalsha"}, func() error {
			_, err := s.Save(ctx, key, []byte("stale"), ^v, time.Minute)
			if errors.Is(err, store.ErrConflict) {
				return nil
			}
			return err
		})
		step("Delete", []string{"del"}, func() error {
			return s.Delete(ctx, key)
		})
		if evalFallbacks > 1 {
			t.Fatalf("EVALSHA fell back to EVAL %d times; want at most once", evalFallbacks)
		}
		t.Logf("round trips: Load 1, Save (new) 1, Save (existing) 1, Delete 1; EVAL fallbacks: %d", evalFallbacks)
	})
}

// TestCorruptEntry checks that values this package did not write give
// ErrCorrupt on Load, count as conflicts on Save, and can be deleted.
func TestCorruptEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		prefix := testPrefix(t)
		s := redisstore.New(b.client, redisstore.WithPrefix(prefix))
		ctx := context.Background()
		for name, value := range map[string]string{
			"empty":     "",
			"short":     "abc",
			"seven":     "1234567",
			"version-0": "\x00\x00\x00\x00\x00\x00\x00\x00payload",
		} {
			key := "corrupt-" + name
			t.Cleanup(func() { _ = b.client.Del(context.Background(), prefix+key).Err() })
			if err := b.client.Set(ctx, prefix+key, value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			for _, ttl := range []time.Duration{0, time.Minute} {
				data, v, err := s.Load(ctx, key, ttl)
				if !errors.Is(err, redisstore.ErrCorrupt) || errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s: Load(ttl %v) = %q, %d, %v; want ErrCorrupt", name, ttl, data, v, err)
				}
			}
			for _, version := range []uint64{0, 1} {
				if _, err := s.Save(ctx, key, []byte("x"), version, time.Minute); !errors.Is(err, store.ErrConflict) {
					t.Errorf("%s: Save(version %d) = %v; want ErrConflict", name, version, err)
				}
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("%s: Delete: %v", name, err)
			}
			if _, _, err := s.Load(ctx, key, 0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: Load after Delete = %v; want ErrNotFound", name, err)
			}
		}
	})
}

func TestStoredValueFormat(t *testing.T) {
	mr := miniredis.RunT(t)
	client := newClient(t, &redis.Options{Addr: mr.Addr()})
	s := redisstore.New(client, redisstore.WithPrefix("app:"))
	ctx := context.Background()
	v, err := s.Save(ctx, "id", []byte("payload"), 0, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := mr.Get("app:id")
	if err != nil {
		t.Fatal(err)
	}
	want := string(binary.BigEndian.AppendUint64(nil, v)) + "payload"
	if raw != want {
		t.Fatalf("stored value = %q; want %q", raw, want)
	}
	if ttl := mr.TTL("app:id"); ttl != 90*time.Second {
		t.Fatalf("TTL = %v; want 90s", ttl)
	}
	if _, _, err := s.Load(ctx, "id", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ttl := mr.TTL("app:id"); ttl != 1500*time.Millisecond {
		t.Fatalf("TTL after Load = %v; want 1.5s", ttl)
	}
	if _, err := redisstore.New(client).Save(ctx, "session:id", nil, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if keys := mr.Keys(); !slices.Equal(keys, []string{"app:id", "session:id"}) {
		t.Fatalf("keys = %q; want app:id and, with no prefix, session:id", keys)
	}
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	mr := miniredis.RunT(t)
	s := redisstore.New(newClient(t, &redis.Options{Addr: mr.Addr()}))
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(context.Background(), "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Fatalf("keys = %q after rejected Saves", keys)
	}
}

// TestScriptNotCached checks the compare-and-set on a server that does not
// hold the script: the EVALSHA is answered NOSCRIPT, the EVAL that follows
// does the work and caches the script, and the next Save needs EVALSHA only.
// A wrong digest would make every Save fall back.
func TestScriptNotCached(t *testing.T) {
	mr := miniredis.RunT(t) // a server of its own: SCRIPT FLUSH touches no one else
	client := newClient(t, &redis.Options{Addr: mr.Addr()})
	log := &commandLog{}
	client.AddHook(log)
	s := redisstore.New(client)
	ctx := context.Background()
	v, err := s.Save(ctx, "k", []byte("v0"), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		log.take()
		for i, want := range [][]string{{"evalsha", "eval"}, {"evalsha"}} {
			payload := fmt.Sprintf("v%d.%d", round, i)
			if v, err = s.Save(ctx, "k", []byte(payload), v, time.Minute); err != nil {
				t.Fatalf("round %d, Save %d: %v", round, i, err)
			}
			if got := log.take(); !slices.Equal(got, want) {
				t.Fatalf("round %d, Save %d sent %q; want %q", round, i, got, want)
			}
			data, got, err := s.Load(ctx, "k", 0)
			if err != nil || got != v || string(data) != payload {
				t.Fatalf("round %d, Save %d: Load = %q, %d, %v; want %q, %d", round, i, data, got, err, payload, v)
			}
			log.take()
		}
	}
	// The conflict answer comes through the fallback too.
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "k", []byte("stale"), ^v, time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save with a stale version after SCRIPT FLUSH: %v; want ErrConflict", err)
	}
}

// TestSentinelFailover saves sessions through Sentinel, has Sentinel promote
// the replica, and checks that the same Store then finds every session on
// the new master with its data and version, and compare-and-sets there. The
// switch may fail some calls for a moment, as the store being down would;
// it must never report a replicated session missing.
func TestSentinelFailover(t *testing.T) {
	addrs, master := sentinelEnv(t)
	client := newFailoverClient(t)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: addrs[0]})
	t.Cleanup(func() { _ = sentinel.Close() })
	ctx := context.Background()
	before, err := sentinel.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME: %v", err)
	}

	s := redisstore.New(client, redisstore.WithPrefix(testPrefix(t)))
	versions := make(map[string]uint64)
	for i := range 20 {
		key := fmt.Sprintf("session-%d", i)
		v, err := s.Save(ctx, key, []byte(key), 0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		versions[key] = v
	}
	// A replica must hold them before the failover. After an earlier
	// failover (a second run of this test), Sentinel takes about ten
	// seconds to turn the old master into a replica: until then WAIT
	// finds none and SENTINEL FAILOVER answers NOGOODSLAVE.
	deadline := time.Now().Add(60 * time.Second)
	retry := func(what string, f func() error) {
		t.Helper()
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	retry("WAIT for a replica", func() error {
		if n, err := client.Wait(ctx, 1, time.Second).Result(); err != nil || n < 1 {
			return fmt.Errorf("%d replicas have the sessions (%v)", n, err)
		}
		return nil
	})
	retry("SENTINEL FAILOVER", func() error { return sentinel.Failover(ctx, master).Err() })
	var after []string
	for {
		after, err = sentinel.GetMasterAddrByName(ctx, master).Result()
		if err == nil && !slices.Equal(after, before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sentinel still names %v as master after FAILOVER (%v)", before, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("master moved from %v to %v", before, after)
	// The client learns of the switch from Sentinel's +switch-master
	// message; until then it may still reach the old master, which keeps
	// answering as one until Sentinel turns it into a replica.
	retry("the client's move to the new master", func() error {
		port, err := client.ConfigGet(ctx, "port").Result()
		if err == nil && port["port"] != after[1] {
			err = fmt.Errorf("the client talks to port %s", port["port"])
		}
		return err
	})

	failures := 0
	for key, want := range versions {
		for {
			data, v, err := s.Load(ctx, key, time.Minute)
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s is missing after the failover", key)
			}
			if err == nil {
				if string(data) != key || v != want {
					t.Fatalf("%s after the failover: %q version %d; want %q version %d", key, data, v, key, want)
				}
				break
			}
			failures++
			if time.Now().After(deadline) {
				t.Fatalf("Load of %s still fails: %v", key, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := s.Save(ctx, "session-0", []byte("after"), versions["session-0"], time.Minute); err != nil {
		t.Fatalf("compare-and-set on the new master: %v", err)
	}
	if _, err := s.Save(ctx, "session-1", []byte("stale"), ^versions["session-1"], time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale compare-and-set on the new master: %v; want ErrConflict", err)
	}
	if failures > 0 {
		t.Logf("%d loads failed on the new master before one succeeded", failures)
	}
}

// TestForeignType puts a value of every Redis type that this package does
// not write under a session's key, with a TTL, and checks that Load
// reports it as corrupt, not as an outage (which would answer every
// request with that cookie 503 for as long as the key lives), that Save
// reports a conflict, and that neither changes the value or its TTL.
func TestForeignType(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		prefix := testPrefix(t)
		s := redisstore.New(b.client, redisstore.WithPrefix(prefix))
		ctx := context.Background()
		const ttl = time.Hour
		for _, kind := range []struct {
			name   string
			create func(key string) error
			read   func(key string) (any, error)
		}{
			{"string", func(k string) error {
				return b.client.Set(ctx, k, "\xde\xad\xbe\xef\x00", 0).Err()
			}, func(k string) (any, error) { return b.client.Get(ctx, k).Result() }},
			{"list", func(k string) error {
				return b.client.RPush(ctx, k, "a", "b").Err()
			}, func(k string) (any, error) { return b.client.LRange(ctx, k, 0, -1).Result() }},
			{"hash", func(k string) error {
				return b.client.HSet(ctx, k, "field", "value").Err()
			}, func(k string) (any, error) { return b.client.HGetAll(ctx, k).Result() }},
			{"set", func(k string) error {
				return b.client.SAdd(ctx, k, "member").Err()
			}, func(k string) (any, error) { return b.client.SMembers(ctx, k).Result() }},
			{"zset", func(k string) error {
				return b.client.ZAdd(ctx, k, redis.Z{Score: 1, Member: "member"}).Err()
			}, func(k string) (any, error) { return b.client.ZRangeWithScores(ctx, k, 0, -1).Result() }},
			{"stream", func(k string) error {
				return b.client.XAdd(ctx, &redis.XAddArgs{Stream: k, ID: "1-1", Values: []string{"f", "v"}}).Err()
			}, func(k string) (any, error) { return b.client.XRange(ctx, k, "-", "+").Result() }},
		} {
			key := "foreign-" + kind.name
			full := prefix + key
			t.Cleanup(func() { _ = b.client.Del(context.Background(), full).Err() })
			if err := kind.create(full); err != nil {
				t.Fatalf("%s: %v", kind.name, err)
			}
			if err := b.client.PExpire(ctx, full, ttl).Err(); err != nil {
				t.Fatalf("%s: PEXPIRE: %v", kind.name, err)
			}
			want, err := kind.read(full)
			if err != nil {
				t.Fatalf("%s: %v", kind.name, err)
			}
			check := func(after string, wantTTL time.Duration) {
				t.Helper()
				got, err := kind.read(full)
				if err != nil {
					t.Fatalf("%s after %s: %v", kind.name, after, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s after %s: %v; want %v", kind.name, after, got, want)
				}
				left, err := b.client.PTTL(ctx, full).Result()
				if err != nil {
					t.Fatal(err)
				}
				if left > wantTTL || left < wantTTL-time.Minute {
					t.Errorf("%s: TTL after %s = %v; want about %v", kind.name, after, left, wantTTL)
				}
			}
			if data, v, err := s.Load(ctx, key, 0); !errors.Is(err, redisstore.ErrCorrupt) || !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("%s: Load(ttl 0) = %q, %d, %v; want ErrCorrupt", kind.name, data, v, err)
			}
			for _, version := range []uint64{0, 1, 0xdeadbeef00000000} {
				if _, err := s.Save(ctx, key, []byte("x"), version, time.Second); !errors.Is(err, store.ErrConflict) {
					t.Errorf("%s: Save(version %#x) = %v; want ErrConflict", kind.name, version, err)
				}
			}
			check("Load and Save", ttl)
			// A renewing Load is a GETEX, which Redis answers WRONGTYPE
			// before touching the TTL. A string it renews, as it would a
			// session; only then is the value seen to be corrupt.
			if data, v, err := s.Load(ctx, key, 2*ttl); !errors.Is(err, redisstore.ErrCorrupt) || !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("%s: Load(ttl %v) = %q, %d, %v; want ErrCorrupt", kind.name, 2*ttl, data, v, err)
			}
			switch {
			case kind.name == "string":
				check("a renewing Load", 2*ttl)
			case b.advance == nil: // miniredis sets the TTL before its type check
				check("a renewing Load", ttl)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("%s: Delete: %v", kind.name, err)
			}
			if n, err := b.client.Exists(ctx, full).Result(); err != nil || n != 0 {
				t.Errorf("%s: EXISTS after Delete = %d, %v; want 0", kind.name, n, err)
			}
		}
	})
}
