package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/storetest"
)

func init() {
	gin.SetMode(gin.TestMode)
}

// backend makes the options of a test: a store, a KeyPrefix of the test's
// own (whose keys are deleted from a real server when the test ends), and
// a log of the keys saved.
type backend struct {
	name string
	// newStore returns a store; each call a new memstore, or the one real
	// Redis.
	newStore func(t *testing.T) store.Store
}

var backends = []backend{
	{"memstore", func(*testing.T) store.Store { return memstore.New() }},
	{"redis", redisStore},
}

// redisClients keeps one client per URL for the whole run.
var redisClients sync.Map

func redisStore(t *testing.T) store.Store {
	u := storetest.ServerEnv(t, "GINSESSION_REDIS_URL", "redis://127.0.0.1:6379/9")
	if c, ok := redisClients.Load(u); ok {
		return redisstore.New(c.(*redis.Client))
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("GINSESSION_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		t.Fatalf("real Redis at %s: %v", opt.Addr, err)
	}
	c, _ := redisClients.LoadOrStore(u, rdb)
	return redisstore.New(c.(*redis.Client))
}

// forEachBackend runs f against every backend, in parallel.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// options returns Options with a store of b wrapped in a keyLog, and a
// KeyPrefix no other test uses.
func (b backend) options(t *testing.T) (ginsession.Options, *keyLog) {
	log := &keyLog{Store: b.newStore(t)}
	return ginsession.Options{Store: log, KeyPrefix: testPrefix(t)}, log
}

// testPrefix returns a key prefix of the test's own and deletes its keys
// from the real Redis, if one is configured, when the test ends.
func testPrefix(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	prefix := "gstest:sessions:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		u := os.Getenv("GINSESSION_REDIS_URL")
		if u == "" {
			return
		}
		opt, err := redis.ParseURL(u)
		if err != nil {
			return
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
				t.Logf("deleting test keys: %v", err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Logf("deleting test keys: %v", err)
		}
	})
	return prefix
}

// keyLog is a store that records the keys of the sessions saved to it.
type keyLog struct {
	store.Store
	mu        sync.Mutex
	saved     []string
	conflicts int
}

func (l *keyLog) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	v, err := l.Store.Save(ctx, key, data, version, ttl)
	l.mu.Lock()
	switch {
	case err == nil:
		l.saved = append(l.saved, key)
	case errors.Is(err, store.ErrConflict):
		l.conflicts++
	}
	l.mu.Unlock()
	return v, err
}

// conflictCount returns how many Saves lost a race.
func (l *keyLog) conflictCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conflicts
}

// keys returns the keys saved so far.
func (l *keyLog) keys() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.saved...)
}

// browser drives an http.Handler in process with a cookie jar.
type browser struct {
	t    testing.TB
	h    http.Handler
	jar  *cookiejar.Jar
	site *url.URL
}

func newBrowser(t testing.TB, h http.Handler) *browser {
	jar, _ := cookiejar.New(nil)
	site, _ := url.Parse("http://localhost/")
	return &browser{t: t, h: h, jar: jar, site: site}
}

// get requests path with the jar's cookies for it, and keeps the cookies
// of the response. It fails the test on a status other than 200.
func (b *browser) get(path string) *httptest.ResponseRecorder {
	b.t.Helper()
	w := b.do(path)
	if w.Code != http.StatusOK {
		b.t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	return w
}

func (b *browser) do(path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	u := b.site.ResolveReference(&url.URL{Path: path})
	for _, c := range b.jar.Cookies(u) {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	b.jar.SetCookies(u, w.Result().Cookies())
	return w
}

// setCookie returns the response's Set-Cookie line for the cookie name,
// or "".
func setCookie(w *httptest.ResponseRecorder, name string) string {
	for _, line := range w.Header().Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// attrs returns the attributes of a Set-Cookie line, without its value.
func attrs(line string) []string {
	parts := strings.Split(line, "; ")
	return parts[1:]
}

func hasAttr(line, attr string) bool {
	for _, a := range attrs(line) {
		if a == attr {
			return true
		}
	}
	return false
}

func attrWithPrefix(line, prefix string) string {
	for _, a := range attrs(line) {
		if strings.HasPrefix(a, prefix) {
			return a
		}
	}
	return ""
}

// saveOK is a handler step that saves s and fails the test on an error.
func saveOK(t *testing.T, s Session) {
	t.Helper()
	if err := s.Save(); err != nil {
		t.Errorf("Save: %v", err)
	}
}
