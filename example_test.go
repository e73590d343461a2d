package ginsession_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/redisstore"
)

// visit sends one request with the cookies a browser would hold and
// remembers the ones the response sets.
func visit(h http.Handler, jar map[string]string, method, path string) string {
	req := httptest.NewRequest(method, path, nil)
	for name, value := range jar {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		jar[c.Name] = c.Value
	}
	return rec.Body.String()
}

// A shopping cart kept in Redis. Update is an atomic read-modify-write of
// one key: two tabs adding at once both keep their item.
func ExampleNew() {
	mr := miniredis.NewMiniRedis() // stands in for your Redis
	mr.Start()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})

	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{
		Store:     redisstore.New(rdb),
		KeyPrefix: "shop:session:",
	}))
	r.POST("/cart", func(c *gin.Context) {
		item := c.Query("item")
		ginsession.Update(c, "cart", func(cart []string) []string {
			return append(cart, item)
		})
		c.Redirect(http.StatusSeeOther, "/cart")
	})
	r.GET("/cart", func(c *gin.Context) {
		cart, _ := ginsession.Get[[]string](c, "cart")
		c.String(http.StatusOK, strings.Join(cart, ", "))
	})

	browser := map[string]string{}
	visit(r, browser, "POST", "/cart?item=tea")
	visit(r, browser, "POST", "/cart?item=cups")
	fmt.Println(visit(r, browser, "GET", "/cart"))
	// Output: tea, cups
}

// Values keep their Go types: Get decodes into the type asked for.
func ExampleGet() {
	type user struct {
		Name  string
		Admin bool
	}
	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{Store: memstore.New()}))
	r.POST("/login", func(c *gin.Context) {
		ginsession.Regenerate(c) // a new ID at every change of privilege
		ginsession.Set(c, "user", user{Name: "ann", Admin: true})
		ginsession.Set(c, "visits", 1)
	})
	r.GET("/", func(c *gin.Context) {
		u, ok := ginsession.Get[user](c, "user")
		visits, _ := ginsession.Get[int](c, "visits")
		_, wrong := ginsession.Get[string](c, "visits")
		c.String(http.StatusOK, "%s admin=%v ok=%v visits=%d as string=%v", u.Name, u.Admin, ok, visits, wrong)
	})

	browser := map[string]string{}
	visit(r, browser, "POST", "/login")
	fmt.Println(visit(r, browser, "GET", "/"))
	// Output: ann admin=true ok=true visits=1 as string=false
}

// Flash messages survive one redirect and are read once.
func ExampleAddFlash() {
	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{Store: memstore.New()}))
	r.POST("/cart", func(c *gin.Context) {
		ginsession.AddFlash(c, "Added to your cart.")
		c.Redirect(http.StatusSeeOther, "/")
	})
	r.GET("/", func(c *gin.Context) {
		c.String(http.StatusOK, "%q", ginsession.Flashes[string](c))
	})

	browser := map[string]string{}
	visit(r, browser, "POST", "/cart")
	fmt.Println(visit(r, browser, "GET", "/"))
	fmt.Println(visit(r, browser, "GET", "/"))
	// Output:
	// ["Added to your cart."]
	// []
}

// Lookup lets a handler render a degraded page instead of the default 503
// when the store is down.
func ExampleLookup() {
	mr := miniredis.NewMiniRedis()
	mr.Start()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})

	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{
		Store:  redisstore.New(rdb),
		Logger: slog.New(slog.DiscardHandler),
	}))
	r.POST("/visit", func(c *gin.Context) { ginsession.Set(c, "name", "ann") })
	r.GET("/", func(c *gin.Context) {
		name, _, err := ginsession.Lookup[string](c, "name")
		if err != nil {
			c.String(http.StatusOK, "Welcome! (your session is unavailable right now)")
			return
		}
		c.String(http.StatusOK, "Welcome back, %s!", name)
	})

	browser := map[string]string{}
	visit(r, browser, "POST", "/visit")
	fmt.Println(visit(r, browser, "GET", "/"))
	mr.SetError("connection lost")
	fmt.Println(visit(r, browser, "GET", "/"))
	// Output:
	// Welcome back, ann!
	// Welcome! (your session is unavailable right now)
}
