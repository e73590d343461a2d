package ginsession

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/memstore"
)

// tokenClient is an API client that keeps its session token from the
// response header it is given in, and sends it back in the request.
type tokenClient struct {
	t      testing.TB
	h      http.Handler
	header string
	token  string // what the header carries, "Bearer ..." included
}

func (tc *tokenClient) do(method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if tc.token != "" {
		req.Header.Set(tc.header, tc.token)
	}
	rec := httptest.NewRecorder()
	tc.h.ServeHTTP(rec, req)
	if v, ok := rec.Header()[http.CanonicalHeaderKey(tc.header)]; ok {
		tc.token = v[0] // "" when the session ended
	}
	if rec.Header().Get("Set-Cookie") != "" {
		tc.t.Fatalf("%s %s set a cookie with Options.Header", method, path)
	}
	return rec
}

// TestHeaderTransport checks the session ID carried in a header: the same
// guarantees as with a cookie (fixation, Regenerate, Destroy, signing,
// absolute timeout, concurrent changes), Vary on the header, no cookie,
// and never an ID from the query string.
func TestHeaderTransport(t *testing.T) {
	t.Parallel()
	for _, header := range []string{"X-Session-Token", "Authorization"} {
		t.Run(header, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, false, func(t *testing.T, b backend) {
				key := []byte(strings.Repeat("k", 32))
				a := newApp(t, Options{Store: b.store, Header: header, SigningKeys: [][]byte{key}, AbsoluteTimeout: time.Hour})
				now := time.Now()
				var mu sync.Mutex
				a.cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
				tc := &tokenClient{t: t, h: a, header: header}
				idOf := func(token string) string {
					return parseCookie(strings.TrimPrefix(token, "Bearer "), a.cfg.keys)
				}

				rec := tc.do("POST", "/set?v=x")
				if tc.token == "" || idOf(tc.token) == "" {
					t.Fatalf("first write sent token %q", tc.token)
				}
				if header == "Authorization" && !strings.HasPrefix(tc.token, "Bearer ") {
					t.Fatalf("token %q lacks the Bearer scheme", tc.token)
				}
				if rec.Header().Get("Vary") != http.CanonicalHeaderKey(header) || rec.Header().Get("Cache-Control") != "private" {
					t.Fatalf("new token: Vary %q, Cache-Control %q", rec.Header().Get("Vary"), rec.Header().Get("Cache-Control"))
				}
				first := tc.token
				rec = tc.do("GET", "/get")
				wantBody(t, rec, 200, "x true")
				if _, resent := rec.Header()[http.CanonicalHeaderKey(header)]; resent {
					t.Fatal("a read sent the token again")
				}
				if rec.Header().Get("Vary") != http.CanonicalHeaderKey(header) || rec.Header().Get("Cache-Control") != "" {
					t.Fatalf("read: Vary %q, Cache-Control %q", rec.Header().Get("Vary"), rec.Header().Get("Cache-Control"))
				}

				// Never from the query string, never a client-chosen ID.
				q := &tokenClient{t: t, h: a, header: header}
				wantBody(t, q.do("GET", "/get?session="+idOf(first)+"&"+header+"="+idOf(first)), 200, " false")
				forged := &tokenClient{t: t, h: a, header: header, token: strings.Replace(first, idOf(first), newID(), 1)}
				wantBody(t, forged.do("GET", "/get"), 200, " false")
				planted := newID()
				fix := &tokenClient{t: t, h: a, header: header, token: planted}
				fix.do("POST", "/set?v=y")
				if idOf(fix.token) == "" || strings.Contains(fix.token, planted) {
					t.Fatalf("a planted ID was adopted: %q", fix.token)
				}

				// Concurrent changes through the header keep each other.
				var wg sync.WaitGroup
				for i := range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := &tokenClient{t: t, h: a, header: header, token: tc.token}
						c.do("POST", "/add?item="+string(rune('a'+i)))
					}()
				}
				wg.Wait()
				if n := strings.Count(tc.do("GET", "/cart").Body.String(), ",") + 1; n != 20 {
					t.Fatalf("%d of 20 concurrent adds kept", n)
				}

				// Regenerate: a new token; the old one is dead.
				tc.do("POST", "/regenerate")
				if tc.token == first || idOf(tc.token) == "" {
					t.Fatalf("Regenerate sent %q", tc.token)
				}
				old := &tokenClient{t: t, h: a, header: header, token: first}
				wantBody(t, old.do("GET", "/get"), 200, " false")
				wantBody(t, tc.do("GET", "/get"), 200, "x true")

				// Destroy: the header comes back empty.
				regenerated := tc.token
				tc.do("POST", "/destroy")
				if tc.token != "" {
					t.Fatalf("Destroy sent %q, want an empty header", tc.token)
				}
				gone := &tokenClient{t: t, h: a, header: header, token: regenerated}
				wantBody(t, gone.do("GET", "/get"), 200, " false")

				// The absolute timeout holds.
				tc.do("POST", "/set?v=z")
				mu.Lock()
				now = now.Add(time.Hour)
				mu.Unlock()
				wantBody(t, tc.do("GET", "/get"), 200, " false")
				if errs := a.drainErrs(); len(errs) != 0 {
					t.Fatalf("errors %v", errs)
				}
			})
		})
	}
}

// TestCookieAndHeaderShareStore checks the usual set-up: cookies for the
// browser routes, a header for /api, one store; and that a Bearer token of
// another scheme is no token, and SetCookieOptions is refused.
func TestCookieAndHeaderShareStore(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	prefix := testPrefix(t)
	r := gin.New()
	web := r.Group("/", New(Options{Store: st, KeyPrefix: prefix, Logger: quiet}))
	api := r.Group("/api", New(Options{Store: st, KeyPrefix: prefix, Header: "authorization", Logger: quiet}))
	for _, g := range []*gin.RouterGroup{web, api} {
		g.POST("/set", func(c *gin.Context) { Set(c, "k", c.Query("v")); c.Status(http.StatusNoContent) })
		g.GET("/get", func(c *gin.Context) { v, _ := Get[string](c, "k"); c.String(http.StatusOK, v) })
	}
	api.POST("/cookie-options", func(c *gin.Context) {
		c.String(http.StatusOK, "%v", errors.Is(SetCookieOptions(c, CookieOptions{}), ErrCookieOptions))
	})
	br := newBrowser(t, r)
	br.do("POST", "/set?v=browser")
	tc := &tokenClient{t: t, h: r, header: "Authorization"}
	tc.do("POST", "/api/set?v=api")
	wantBody(t, br.do("GET", "/get"), 200, "browser")
	wantBody(t, tc.do("GET", "/api/get"), 200, "api")
	wantBody(t, tc.do("POST", "/api/cookie-options"), 200, "true")
	basic := &tokenClient{t: t, h: r, header: "Authorization", token: "Basic " + strings.TrimPrefix(tc.token, "Bearer ")}
	wantBody(t, basic.do("GET", "/api/get"), 200, "")
	lower := &tokenClient{t: t, h: r, header: "Authorization", token: "bearer  " + strings.TrimPrefix(tc.token, "Bearer ")}
	wantBody(t, lower.do("GET", "/api/get"), 200, "api")
}
