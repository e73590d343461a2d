package ginsession

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/internal/sharedcache"
)

func TestAddVary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{"Cookie"}},
		{[]string{"Accept-Encoding"}, []string{"Accept-Encoding", "Cookie"}},
		{[]string{"accept-encoding, cookie"}, []string{"accept-encoding, cookie"}},
		{[]string{"Origin", " Cookie "}, []string{"Origin", " Cookie "}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Vary"] = slices.Clone(tc.in)
		}
		addVary(h, "Cookie")
		if !slices.Equal(h["Vary"], tc.want) {
			t.Errorf("addVary(%q) = %q, want %q", tc.in, h["Vary"], tc.want)
		}
	}
}

func TestPrivateOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "private"},
		{[]string{"public, max-age=600"}, "private, max-age=600"},
		{[]string{"s-maxage=60, max-age=10, must-revalidate"}, "private, max-age=10, must-revalidate"},
		{[]string{"PUBLIC", "S-MaxAge=5"}, "private"},
		{[]string{"private"}, "private"},
		{[]string{`no-cache="Set-Cookie, public", public`}, `private, no-cache="Set-Cookie, public"`},
		{[]string{"no-store"}, "private, no-store"},
		{[]string{"max-age=0, , immutable"}, "private, max-age=0, immutable"},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Cache-Control"] = slices.Clone(tc.in)
		}
		privateOnly(h)
		if got := h["Cache-Control"]; len(got) != 1 || got[0] != tc.want {
			t.Errorf("privateOnly(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCacheHeaders checks the headers that keep shared caches from mixing
// up sessions: Vary: Cookie when the handler used the session, and
// Cache-Control: private whenever the response carries the session
// cookie, whatever the handler set, and however the response is sent.
func TestCacheHeaders(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, testCacheHeaders)
}

func testCacheHeaders(t *testing.T, b backend) {
	a := newApp(t, Options{Store: b.store})
	public := func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=600, s-maxage=3600")
		c.Header("Vary", "Accept-Encoding")
	}
	a.GET("/public-none", func(c *gin.Context) { public(c); c.String(200, "none") })
	a.GET("/public-get", func(c *gin.Context) {
		public(c)
		v, _ := Get[string](c, "k")
		c.String(200, v)
	})
	a.POST("/public-set", func(c *gin.Context) { public(c); Set(c, "k", "v"); c.String(200, "ok") })
	a.POST("/set-silent", func(c *gin.Context) { Set(c, "k", "v") }) // headers sent by gin after the middleware
	a.POST("/status-then-header", func(c *gin.Context) {
		Set(c, "k", "v")
		c.Status(200) // commits, headers not sent yet
		c.Header("Cache-Control", "public, max-age=60")
		c.Writer.WriteString("late header")
	})
	a.POST("/public-destroy", func(c *gin.Context) { public(c); Destroy(c); c.String(200, "bye") })

	type want struct {
		vary         []string
		cacheControl string
		cookie       bool
	}
	br := newBrowser(t, a)
	for _, step := range []struct {
		method, path string
		want         want
	}{
		{"GET", "/none", want{nil, "", false}},
		{"GET", "/public-none", want{[]string{"Accept-Encoding"}, "public, max-age=600, s-maxage=3600", false}},
		// No cookie yet, and none sent: the page is the anonymous one.
		{"GET", "/public-get", want{[]string{"Accept-Encoding", "Cookie"}, "public, max-age=600, s-maxage=3600", false}},
		{"POST", "/public-set", want{[]string{"Accept-Encoding", "Cookie"}, "private, max-age=600", true}},
		// The rolling refresh re-sends the cookie on a read.
		{"GET", "/public-get", want{[]string{"Accept-Encoding", "Cookie"}, "private, max-age=600", true}},
		{"GET", "/get", want{[]string{"Cookie"}, "private", true}},
		{"POST", "/set-silent", want{[]string{"Cookie"}, "private", true}},
		{"POST", "/status-then-header", want{[]string{"Cookie"}, "private, max-age=60", true}},
		{"POST", "/public-destroy", want{[]string{"Accept-Encoding", "Cookie"}, "private, max-age=600", true}},
	} {
		rec := br.do(step.method, step.path)
		h := rec.Result().Header
		if !slices.Equal(h["Vary"], step.want.vary) || h.Get("Cache-Control") != step.want.cacheControl ||
			(sessionCookie(rec) != nil) != step.want.cookie {
			t.Errorf("%s %s: Vary %q, Cache-Control %q, cookie %v; want %+v",
				step.method, step.path, h["Vary"], h.Get("Cache-Control"), sessionCookie(rec) != nil, step.want)
		}
	}
}

// TestSharedCacheNeverMixesSessions puts an RFC 9111 shared cache in
// front of the app, one that stores responses carrying Set-Cookie as many
// CDNs do, and checks that a second visitor never receives the first
// one's session cookie or page, whatever Cache-Control the handlers chose.
func TestSharedCacheNeverMixesSessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, func(t *testing.T, b backend) {
		for _, cc := range []string{"", "public, max-age=600", "s-maxage=600", "max-age=0, must-revalidate", "no-cache"} {
			t.Run(cc, func(t *testing.T) {
				sharedCacheVisitors(t, b, cc)
			})
		}
	})
}

// sharedCacheVisitors runs two visitors through a shared cache in front of
// an app whose pages set Cache-Control cc.
func sharedCacheVisitors(t *testing.T, b backend, cc string) {
	a := newApp(t, Options{Store: b.store})
	page := func(c *gin.Context) {
		if cc != "" {
			c.Header("Cache-Control", cc)
		}
		user, _ := Get[string](c, "user")
		c.Header("ETag", `"same-for-everyone"`) // invites revalidation
		c.String(http.StatusOK, "hello %q", user)
	}
	a.GET("/me", page)
	a.GET("/first-visit", func(c *gin.Context) {
		Update(c, "visits", func(n int) int { return n + 1 })
		page(c)
	})
	a.POST("/login", func(c *gin.Context) {
		Regenerate(c)
		Set(c, "user", c.Query("u"))
		c.Status(http.StatusNoContent)
	})
	cache := &sharedcache.Cache{Origin: a, HeuristicTTL: time.Hour}
	alice, bob := newBrowser(t, cache), newBrowser(t, cache)

	check := func(who *browser, rec *httptest.ResponseRecorder, wantUser string) {
		t.Helper()
		if want := fmt.Sprintf("hello %q", wantUser); rec.Body.String() != want {
			t.Fatalf("got page %q, want %q (X-Cache %s)", rec.Body.String(), want, rec.Header().Get(sharedcache.StatusHeader))
		}
		if c := sessionCookie(rec); c != nil && who != alice && c.Value == alice.cookie() && c.Value != "" {
			t.Fatalf("bob received alice's session cookie (X-Cache %s)", rec.Header().Get(sharedcache.StatusHeader))
		}
	}
	check(bob, bob.do("GET", "/me"), "") // the anonymous page may be cached
	check(alice, alice.do("GET", "/first-visit"), "")
	alice.do("POST", "/login?u=alice")
	for range 3 {
		check(alice, alice.do("GET", "/me"), "alice")
		check(bob, bob.do("GET", "/me"), "")
		check(bob, bob.do("GET", "/first-visit"), "")
	}
	if bob.cookie() == alice.cookie() {
		t.Fatal("bob holds alice's session")
	}
}
