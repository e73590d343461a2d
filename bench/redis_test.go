package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
)

// redisURLEnv names the Redis every Redis contender uses. Without it the
// Redis contenders are skipped, except under CI=true, where they fail.
const redisURLEnv = "GINSESSION_REDIS_URL"

// runPrefix starts every key this run writes, so that it can share a
// Redis database with other users and clean up after itself by prefix.
var runPrefix = func() string {
	var b [6]byte
	rand.Read(b[:])
	return "gsbench:" + hex.EncodeToString(b[:]) + ":"
}()

// redisURL returns the Redis URL to use, or skips tb.
func redisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(redisURLEnv)
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set; CI must run the Redis benchmarks", redisURLEnv)
		}
		tb.Skipf("%s is not set; skipping the Redis contenders", redisURLEnv)
	}
	return u
}

func TestMain(m *testing.M) {
	code := m.Run()
	runCleanups()
	if u := os.Getenv(redisURLEnv); u != "" {
		if err := deleteRunKeys(u); err != nil {
			fmt.Fprintf(os.Stderr, "bench: removing this run's keys: %v\n", err)
		}
	}
	os.Exit(code)
}

// deleteRunKeys removes every key under runPrefix (never FLUSHDB: the
// database may be shared).
func deleteRunKeys(url string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := rdb.Scan(ctx, 0, runPrefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}

// goRedisClient returns a go-redis client whose round trips are counted
// in n: one per command, one per pipeline.
func goRedisClient(tb testing.TB, n *atomic.Int64) *redis.Client {
	opt, err := redis.ParseURL(redisURL(tb))
	if err != nil {
		tb.Fatalf("%s: %v", redisURLEnv, err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("Redis at %s: %v", opt.Addr, err)
	}
	rdb.AddHook(tripHook{n})
	return rdb
}

// tripHook counts the round trips a go-redis client makes.
type tripHook struct{ n *atomic.Int64 }

func (h tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// redigoDial returns a redigo Dial function for the configured Redis
// whose connections count their round trips in n.
func redigoDial(tb testing.TB, n *atomic.Int64) func() (redigo.Conn, error) {
	url := redisURL(tb)
	return func() (redigo.Conn, error) {
		c, err := redigo.DialURL(url)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: n}, nil
	}
}

// countingConn counts the round trips made on a redigo connection: a Do
// with a command, or a Do or Flush that sends commands queued by Send.
// A Do("") with nothing queued, which redigo's pool issues when a
// connection is returned, touches no network and is not counted.
type countingConn struct {
	redigo.Conn
	n       *atomic.Int64
	pending int
}

func (c *countingConn) Do(cmd string, args ...any) (any, error) {
	if cmd != "" || c.pending > 0 {
		c.n.Add(1)
	}
	c.pending = 0
	return c.Conn.Do(cmd, args...)
}

func (c *countingConn) Send(cmd string, args ...any) error {
	c.pending++
	return c.Conn.Send(cmd, args...)
}

func (c *countingConn) Flush() error {
	if c.pending > 0 {
		c.n.Add(1)
	}
	c.pending = 0
	return c.Conn.Flush()
}

// countingStore counts the calls made to an in-process store: each stands
// for one round trip.
type countingStore struct {
	store.Store
	n *atomic.Int64
}

func (c countingStore) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	c.n.Add(1)
	return c.Store.Load(ctx, key, ttl)
}

func (c countingStore) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	c.n.Add(1)
	return c.Store.Save(ctx, key, data, version, ttl)
}

func (c countingStore) Delete(ctx context.Context, key string) error {
	c.n.Add(1)
	return c.Store.Delete(ctx, key)
}
