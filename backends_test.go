package ginsession

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/storetest"
)

func init() { gin.SetMode(gin.TestMode) }

// backend is a store the end-to-end tests run against, with a count of
// the round trips made to it.
type backend struct {
	name  string
	store store.Store
	trips *atomic.Int64
	mr    *miniredis.Miniredis // set for miniredis
}

// counting wraps a store.Store and counts its calls: each is one round
// trip for the in-process memstore.
type counting struct {
	store.Store
	n *atomic.Int64
}

func (c counting) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	c.n.Add(1)
	return c.Store.Load(ctx, key, ttl)
}

func (c counting) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	c.n.Add(1)
	return c.Store.Save(ctx, key, data, version, ttl)
}

func (c counting) Delete(ctx context.Context, key string) error {
	c.n.Add(1)
	return c.Store.Delete(ctx, key)
}

// tripHook counts every command go-redis sends; a pipeline counts once.
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

func memBackend(t testing.TB) backend {
	n := new(atomic.Int64)
	return backend{name: "memstore", store: counting{memstore.New(), n}, trips: n}
}

func miniredisBackend(t testing.TB) backend {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil { // open a connection before counting
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	rdb.AddHook(tripHook{n})
	return backend{name: "miniredis", store: redisstore.New(rdb), trips: n, mr: mr}
}

func redisBackend(t testing.TB) backend {
	opt, err := redis.ParseURL(storetest.ServerEnv(t, "GINSESSION_REDIS_URL", "redis://127.0.0.1:6379/9"))
	if err != nil {
		t.Fatalf("GINSESSION_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("real Redis at %s: %v", opt.Addr, err)
	}
	n := new(atomic.Int64)
	rdb.AddHook(tripHook{n})
	return backend{name: "redis", store: redisstore.New(rdb), trips: n}
}

func clusterBackend(t testing.TB) backend {
	addrs := strings.Split(storetest.ServerEnv(t, "GINSESSION_REDIS_CLUSTER_ADDRS", "127.0.0.1:30001,127.0.0.1:30002,127.0.0.1:30003"), ",")
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.ForEachShard(context.Background(), func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	}); err != nil {
		t.Fatalf("Redis Cluster at %v: %v", addrs, err)
	}
	n := new(atomic.Int64)
	rdb.AddHook(tripHook{n})
	return backend{name: "cluster", store: redisstore.New(rdb), trips: n}
}

// forEachBackend runs f against memstore, miniredis, real Redis and, with
// cluster, a real Redis Cluster.
func forEachBackend(t *testing.T, cluster bool, f func(t *testing.T, b backend)) {
	makers := []func(testing.TB) backend{memBackend, miniredisBackend, redisBackend}
	names := []string{"memstore", "miniredis", "redis"}
	if cluster {
		makers = append(makers, clusterBackend)
		names = append(names, "cluster")
	}
	for i, mk := range makers {
		t.Run(names[i], func(t *testing.T) {
			t.Parallel()
			f(t, mk(t))
		})
	}
}

// testPrefix is a key prefix no other test run uses, so tests can share a
// real server without touching anyone else's keys.
// Its keys are deleted from the real servers when the test ends.
func testPrefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	prefix := "gstest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() { deleteKeys(t, prefix) })
	return prefix
}

// deleteKeys removes the keys under prefix from the real Redis and Redis
// Cluster named by the environment, if any.
func deleteKeys(t testing.TB, prefix string) {
	ctx := context.Background()
	scanDelete := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if u := os.Getenv("GINSESSION_REDIS_URL"); u != "" {
		if opt, err := redis.ParseURL(u); err == nil {
			rdb := redis.NewClient(opt)
			if err := scanDelete(ctx, rdb); err != nil {
				t.Logf("deleting test keys: %v", err)
			}
			rdb.Close()
		}
	}
	if addrs := os.Getenv("GINSESSION_REDIS_CLUSTER_ADDRS"); addrs != "" {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
		if err := cc.ForEachMaster(ctx, scanDelete); err != nil {
			t.Logf("deleting test keys: %v", err)
		}
		cc.Close()
	}
}

// browser is a client with a cookie jar driving an http.Handler in process.
type browser struct {
	t   testing.TB
	h   http.Handler
	jar *cookiejar.Jar
}

var site, _ = url.Parse("http://shop.test/")

func newBrowser(t testing.TB, h http.Handler) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, h: h, jar: jar}
}

func (b *browser) do(method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for _, c := range b.jar.Cookies(site) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	b.jar.SetCookies(site, rec.Result().Cookies())
	return rec
}

// cookie returns the value of the browser's session cookie, or "".
func (b *browser) cookie() string {
	for _, c := range b.jar.Cookies(site) {
		if c.Name == DefaultCookieName {
			return c.Value
		}
	}
	return ""
}

// setCookie puts a session cookie with the given value in the jar.
func (b *browser) setCookie(value string) {
	b.jar.SetCookies(site, []*http.Cookie{{Name: DefaultCookieName, Value: value, Path: "/"}})
}
