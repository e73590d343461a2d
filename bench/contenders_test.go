package bench

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/gob"
	"errors"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gin-contrib/sessions"
	gcredis "github.com/gin-contrib/sessions/redis"
	"github.com/gin-gonic/gin"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/redisstore"
)

func init() {
	gin.SetMode(gin.ReleaseMode)
	// gin-contrib/sessions and scs keep values as interface{} and encode
	// them with gob, which must be told about the cart's type.
	gob.Register(map[string]int{})
}

// cookieName is the session cookie of every contender.
const cookieName = "session"

// ttl is the session lifetime wherever a contender lets us choose it.
const ttl = 24 * time.Hour

// A contender is one way of keeping sessions behind the same routes.
type contender struct {
	name  string
	h     http.Handler
	trips *atomic.Int64 // store round trips; nil for bare gin
}

// contenderSpec says how to build a contender and what to expect of it.
type contenderSpec struct {
	name     string
	redis    bool            // needs GINSESSION_REDIS_URL
	noCookie bool            // keeps no session (bare gin)
	routes   map[string]bool // the routes it serves; nil: all
	noLost   bool            // must keep every concurrent cart add
	build    func(tb testing.TB, trips *atomic.Int64) http.Handler
}

// contenders in the order of benchstat's columns: the first is the base
// the others are compared with.
var contenders = []contenderSpec{
	{name: "ginsession-redis", redis: true, noLost: true, build: buildGinsessionRedis},
	{name: "gincontrib-redis", redis: true, build: buildGinContrib},
	{name: "scs-redis", redis: true, build: buildSCS},
	{name: "floor", redis: true, build: buildFloor},
	{name: "floor-rmw", redis: true, build: buildFloorRMW,
		routes: map[string]bool{"write": true, "first-write": true}},
	{name: "ginsession-mem", noLost: true, build: buildGinsessionMem},
	{name: "gin", noCookie: true, build: buildBareGin},
}

func (s contenderSpec) serves(route string) bool { return s.routes == nil || s.routes[route] }

var (
	builtMu sync.Mutex
	built   = map[string]*contender{}
)

// get builds the contender once per process: benchmarks of many routes
// and b.N values share it, with its connections.
func (s contenderSpec) get(tb testing.TB) *contender {
	tb.Helper()
	if s.redis {
		redisURL(tb) // skips or fails without Redis
	}
	builtMu.Lock()
	defer builtMu.Unlock()
	if c := built[s.name]; c != nil {
		return c
	}
	c := &contender{name: s.name}
	if !s.noCookie {
		c.trips = new(atomic.Int64)
	}
	c.h = s.build(processTB{tb}, c.trips)
	built[s.name] = c
	return c
}

// processTB hands the contender builders a testing.TB whose Cleanup runs
// when the process ends rather than when the first benchmark does.
type processTB struct{ testing.TB }

var (
	cleanupsMu sync.Mutex
	cleanups   []func()
)

func (processTB) Cleanup(f func()) {
	cleanupsMu.Lock()
	cleanups = append(cleanups, f)
	cleanupsMu.Unlock()
}

func runCleanups() {
	cleanupsMu.Lock()
	defer cleanupsMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func (c *contender) tripCount() int64 {
	if c.trips == nil {
		return 0
	}
	return c.trips.Load()
}

// handlers are one contender's implementation of the session routes.
type handlers struct {
	read, write, cartAdd, cart, login gin.HandlerFunc
}

// newEngine serves the same six routes for every contender. /none never
// touches the session.
func newEngine(h handlers, middleware ...gin.HandlerFunc) *gin.Engine {
	r := gin.New()
	r.Use(middleware...)
	r.GET("/none", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	r.GET("/read", h.read)
	r.POST("/write", h.write)
	r.POST("/cart/add", h.cartAdd)
	r.GET("/cart", h.cart)
	r.POST("/login", h.login)
	return r
}

// fail ends a request whose session operation failed, so that the
// benchmark notices.
func fail(c *gin.Context, err error) bool {
	if err == nil {
		return false
	}
	c.Error(err)
	c.AbortWithStatus(http.StatusInternalServerError)
	return true
}

// addItem adds one of item to a cart.
func addItem(cart map[string]int, item string) map[string]int {
	if cart == nil {
		cart = make(map[string]int, 1)
	}
	cart[item]++
	return cart
}

// ginsession: values encoded one by one with msgpack, lazy load,
// compare-and-set commits.

func ginsessionHandlers() handlers {
	return handlers{
		read: func(c *gin.Context) {
			n, _ := ginsession.Get[int](c, "n")
			c.String(http.StatusOK, strconv.Itoa(n))
		},
		write: func(c *gin.Context) {
			if fail(c, ginsession.Update(c, "n", func(n int) int { return n + 1 })) {
				return
			}
			c.Status(http.StatusNoContent)
		},
		cartAdd: func(c *gin.Context) {
			item := c.Query("item")
			if fail(c, ginsession.Update(c, "cart", func(cart map[string]int) map[string]int { return addItem(cart, item) })) {
				return
			}
			c.Status(http.StatusNoContent)
		},
		cart: func(c *gin.Context) {
			cart, _ := ginsession.Get[map[string]int](c, "cart")
			c.String(http.StatusOK, strconv.Itoa(len(cart)))
		},
		login: func(c *gin.Context) {
			if fail(c, ginsession.Regenerate(c)) || fail(c, ginsession.Set(c, "user", "alice")) {
				return
			}
			c.Status(http.StatusNoContent)
		},
	}
}

func buildGinsessionRedis(tb testing.TB, trips *atomic.Int64) http.Handler {
	rdb := goRedisClient(tb, trips)
	return newEngine(ginsessionHandlers(), ginsession.New(ginsession.Options{
		Store:     redisstore.New(rdb),
		KeyPrefix: runPrefix + "gs:",
		Lifetime:  ttl,
	}))
}

func buildGinsessionMem(tb testing.TB, trips *atomic.Int64) http.Handler {
	return newEngine(ginsessionHandlers(), ginsession.New(ginsession.Options{
		Store:     countingStore{memstore.New(), trips},
		KeyPrefix: runPrefix + "gs:",
		Lifetime:  ttl,
	}))
}

// gin-contrib/sessions v1.0.4 with its redis store (boj/redistore on
// redigo, gob-encoded values), configured as its README shows; the pool
// is the one its NewStore builds (PING on every borrow), with dials
// counted and room for every parallel client.

func buildGinContrib(tb testing.TB, trips *atomic.Int64) http.Handler {
	pool := &redigo.Pool{
		MaxIdle:     32,
		IdleTimeout: 240 * time.Second,
		TestOnBorrow: func(c redigo.Conn, _ time.Time) error {
			_, err := c.Do("PING")
			return err
		},
		Dial: redigoDial(tb, trips),
	}
	tb.Cleanup(func() { pool.Close() })
	st, err := gcredis.NewStoreWithPool(pool, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := gcredis.SetKeyPrefix(st, runPrefix+"gc:"); err != nil {
		tb.Fatal(err)
	}
	st.Options(sessions.Options{Path: "/", MaxAge: int(ttl / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return newEngine(handlers{
		read: func(c *gin.Context) {
			n, _ := sessions.Default(c).Get("n").(int)
			c.String(http.StatusOK, strconv.Itoa(n))
		},
		write: func(c *gin.Context) {
			s := sessions.Default(c)
			n, _ := s.Get("n").(int)
			s.Set("n", n+1)
			if fail(c, s.Save()) {
				return
			}
			c.Status(http.StatusNoContent)
		},
		cartAdd: func(c *gin.Context) {
			s := sessions.Default(c)
			cart, _ := s.Get("cart").(map[string]int)
			s.Set("cart", addItem(cart, c.Query("item")))
			if fail(c, s.Save()) {
				return
			}
			c.Status(http.StatusNoContent)
		},
		cart: func(c *gin.Context) {
			cart, _ := sessions.Default(c).Get("cart").(map[string]int)
			c.String(http.StatusOK, strconv.Itoa(len(cart)))
		},
		login: func(c *gin.Context) {
			// gorilla/sessions has no way to give a session a new ID.
			s := sessions.Default(c)
			s.Set("user", "alice")
			if fail(c, s.Save()) {
				return
			}
			c.Status(http.StatusNoContent)
		},
	}, sessions.Sessions(cookieName, st))
}

// scs v2.9.0 with its redisstore (redigo, gob-encoded session), as its
// README shows: LoadAndSave wraps the whole gin engine.

func buildSCS(tb testing.TB, trips *atomic.Int64) http.Handler {
	pool := &redigo.Pool{MaxIdle: 32, Dial: redigoDial(tb, trips)}
	tb.Cleanup(func() { pool.Close() })
	sm := scs.New()
	sm.Store = scsredis.NewWithPrefix(pool, runPrefix+"scs:")
	sm.Lifetime = ttl
	sm.Cookie.Name = cookieName
	return sm.LoadAndSave(newEngine(handlers{
		read: func(c *gin.Context) {
			c.String(http.StatusOK, strconv.Itoa(sm.GetInt(c.Request.Context(), "n")))
		},
		write: func(c *gin.Context) {
			ctx := c.Request.Context()
			sm.Put(ctx, "n", sm.GetInt(ctx, "n")+1)
			c.Status(http.StatusNoContent)
		},
		cartAdd: func(c *gin.Context) {
			ctx := c.Request.Context()
			cart, _ := sm.Get(ctx, "cart").(map[string]int)
			sm.Put(ctx, "cart", addItem(cart, c.Query("item")))
			c.Status(http.StatusNoContent)
		},
		cart: func(c *gin.Context) {
			cart, _ := sm.Get(c.Request.Context(), "cart").(map[string]int)
			c.String(http.StatusOK, strconv.Itoa(len(cart)))
		},
		login: func(c *gin.Context) {
			ctx := c.Request.Context()
			if fail(c, sm.RenewToken(ctx)) {
				return
			}
			sm.Put(ctx, "user", "alice")
			c.Status(http.StatusNoContent)
		},
	}))
}

// floor: gin and one raw go-redis command per request that touches the
// session, keyed by the cookie's value as it is: no signature check, no
// encoding, no conditional write.

func buildFloor(tb testing.TB, trips *atomic.Int64) http.Handler {
	rdb := goRedisClient(tb, trips)
	prefix := runPrefix + "floor:"
	return newEngine(handlers{
		read: func(c *gin.Context) {
			id, _ := c.Cookie(cookieName)
			n, err := rdb.GetEx(c, prefix+id+":n", ttl).Int()
			if err != nil && !errors.Is(err, redis.Nil) {
				fail(c, err)
				return
			}
			c.String(http.StatusOK, strconv.Itoa(n))
		},
		write: func(c *gin.Context) {
			if fail(c, rdb.Incr(c, prefix+floorID(c)+":n").Err()) {
				return
			}
			c.Status(http.StatusNoContent)
		},
		cartAdd: func(c *gin.Context) {
			if fail(c, rdb.HIncrBy(c, prefix+floorID(c)+":cart", c.Query("item"), 1).Err()) {
				return
			}
			c.Status(http.StatusNoContent)
		},
		cart: func(c *gin.Context) {
			id, _ := c.Cookie(cookieName)
			n, err := rdb.HLen(c, prefix+id+":cart").Result()
			if fail(c, err) {
				return
			}
			c.String(http.StatusOK, strconv.FormatInt(n, 10))
		},
		login: func(c *gin.Context) {
			if fail(c, rdb.Set(c, prefix+floorID(c)+":user", "alice", ttl).Err()) {
				return
			}
			c.Status(http.StatusNoContent)
		},
	})
}

// floorID returns the ID in the request's cookie, or a new one it sends
// back in a cookie.
func floorID(c *gin.Context) string {
	if id, err := c.Cookie(cookieName); err == nil && id != "" {
		return id
	}
	var b [32]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	c.SetCookie(cookieName, id, int(ttl/time.Second), "/", "", false, true)
	return id
}

// compareAndSet is the conditional write of the read+CAS floor: replace
// the value if its first 8 bytes (the version) are still ARGV[1].
var compareAndSet = redis.NewScript(`
if redis.call('GETRANGE', KEYS[1], 0, 7) ~= ARGV[1] then
	return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// floor-rmw: the floor of a versioned read-modify-write, as ginsession's
// redisstore does it: GETEX, then a compare-and-set script (or SET NX for
// a new session). The value is an 8-byte version and an 8-byte counter.

func buildFloorRMW(tb testing.TB, trips *atomic.Int64) http.Handler {
	rdb := goRedisClient(tb, trips)
	prefix := runPrefix + "rmw:"
	ms := ttl.Milliseconds()
	write := func(c *gin.Context) {
		ctx := c.Request.Context()
		key := prefix + floorID(c)
		old, err := rdb.GetEx(ctx, key, ttl).Bytes()
		if errors.Is(err, redis.Nil) {
			var v [16]byte
			binary.BigEndian.PutUint64(v[:8], mathrand.Uint64()|1)
			binary.BigEndian.PutUint64(v[8:], 1)
			if fail(c, rdb.SetNX(ctx, key, v[:], ttl).Err()) {
				return
			}
			c.Status(http.StatusNoContent)
			return
		}
		if fail(c, err) {
			return
		}
		if len(old) != 16 {
			fail(c, errors.New("floor-rmw: bad value"))
			return
		}
		var v [16]byte
		binary.BigEndian.PutUint64(v[:8], mathrand.Uint64()|1)
		binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(old[8:])+1)
		ok, err := compareAndSet.Run(ctx, rdb, []string{key}, old[:8], v[:], ms).Int()
		if fail(c, err) {
			return
		}
		if ok != 1 {
			fail(c, errors.New("floor-rmw: conflict"))
			return
		}
		c.Status(http.StatusNoContent)
	}
	notServed := func(c *gin.Context) { c.AbortWithStatus(http.StatusNotImplemented) }
	return newEngine(handlers{read: notServed, write: write, cartAdd: notServed, cart: notServed, login: notServed})
}

// gin: no sessions at all.

func buildBareGin(testing.TB, *atomic.Int64) http.Handler {
	return newEngine(handlers{
		read:    func(c *gin.Context) { c.String(http.StatusOK, "0") },
		write:   func(c *gin.Context) { c.Status(http.StatusNoContent) },
		cartAdd: func(c *gin.Context) { c.Status(http.StatusNoContent) },
		cart:    func(c *gin.Context) { c.String(http.StatusOK, "0") },
		login:   func(c *gin.Context) { c.Status(http.StatusNoContent) },
	})
}
