package ginsession

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/memstore"
)

// TestSetCookieOptions checks a session's own cookie attributes: sent at
// once, kept for later responses and across Regenerate, refused when a
// browser would reject them, and used to expire the cookie on Destroy.
func TestSetCookieOptions(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := newApp(t, Options{Store: st})
	a.POST("/opts", func(c *gin.Context) {
		err := SetCookieOptions(c, CookieOptions{Domain: c.Query("domain"), SameSite: http.SameSiteStrictMode, BrowserSession: c.Query("bs") == "1"})
		if err != nil {
			c.String(http.StatusOK, "error: %v", err)
			return
		}
		c.String(http.StatusOK, "ok")
	})
	a.POST("/bad-opts", func(c *gin.Context) {
		err := SetCookieOptions(c, CookieOptions{SameSite: http.SameSiteNoneMode})
		c.String(http.StatusOK, "%v", errors.Is(err, ErrCookieOptions))
	})
	a.POST("/read-destroy", func(c *gin.Context) {
		Get[string](c, "k") // Destroy alone does not load, and would not know the options
		Destroy(c)
	})
	line := func(rec *httptest.ResponseRecorder) string { return rec.Header().Get("Set-Cookie") }
	has := func(l string, want ...string) bool {
		for _, w := range want {
			if !strings.Contains(l, w) {
				return false
			}
		}
		return true
	}
	br := newBrowser(t, a)
	br.do("POST", "/set?v=x")
	id := br.cookie()
	if l := line(br.do("POST", "/opts?domain=shop.test")); !has(l, "Domain=shop.test", "SameSite=Strict", "Max-Age=") {
		t.Fatalf("after SetCookieOptions: %q", l)
	}
	if l := line(br.do("GET", "/get")); !has(l, "Domain=shop.test", "SameSite=Strict") {
		t.Fatalf("a later read's refresh: %q", l)
	}
	wantBody(t, br.do("POST", "/bad-opts"), 200, "true")
	if l := line(br.do("GET", "/get")); !has(l, "Domain=shop.test") {
		t.Fatalf("after refused options: %q", l)
	}
	br.do("POST", "/regenerate")
	if br.cookie() == id {
		t.Fatal("not regenerated")
	}
	if l := line(br.do("GET", "/get")); !has(l, "Domain=shop.test") {
		t.Fatalf("after Regenerate: %q", l)
	}
	if l := line(br.do("POST", "/opts?domain=shop.test&bs=1")); !has(l, "Domain=shop.test") || strings.Contains(l, "Max-Age") {
		t.Fatalf("browser-session options: %q", l)
	}
	if l := line(br.do("POST", "/read-destroy")); !has(l, "Max-Age=0", "Domain=shop.test") {
		t.Fatalf("Destroy expires %q, want the cookie's own Domain", l)
	}
	wantBody(t, br.do("GET", "/keys"), 200, "") // the options are no key of the handler's

	// Options alone are no session: nothing stored, no cookie.
	fresh := newBrowser(t, a)
	if rec := fresh.do("POST", "/opts?domain=shop.test"); line(rec) != "" {
		t.Fatalf("options alone sent %q", line(rec))
	}
}

// TestNamedSessions checks two middlewares with different cookie names on
// one request: each keeps its own session, Named picks one, and the plain
// accessors use the one installed last.
func TestNamedSessions(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	r := gin.New()
	r.Use(New(Options{Store: st, Cookie: CookieOptions{Name: "a"}, KeyPrefix: testPrefix(t), Logger: quiet}))
	r.Use(New(Options{Store: st, Cookie: CookieOptions{Name: "b"}, KeyPrefix: testPrefix(t), Logger: quiet}))
	r.POST("/set", func(c *gin.Context) {
		Set(Named(c, "a"), "k", "in a")
		Set(Named(c, "b"), "k", "in b")
		Set(c, "plain", "innermost")
		c.Status(http.StatusNoContent)
	})
	r.GET("/get", func(c *gin.Context) {
		va, _ := Get[string](Named(c, "a"), "k")
		vb, _ := Get[string](Named(c, "b"), "k")
		p, _ := Get[string](c, "plain")
		c.String(http.StatusOK, "%s|%s|%s|%s", va, vb, p, strings.Join(Keys(Named(c, "a")), ","))
	})
	r.GET("/unknown", func(c *gin.Context) { Named(c, "nope") })
	br := newBrowser(t, r)
	rec := br.do("POST", "/set")
	if n := len(rec.Result().Cookies()); n != 2 {
		t.Fatalf("%d cookies, want 2", n)
	}
	wantBody(t, br.do("GET", "/get"), 200, "in a|in b|innermost|k")
	func() {
		defer func() {
			if msg := recover(); msg == nil || !strings.Contains(msg.(string), `"nope"`) {
				t.Fatalf("Named of an unknown name: %v", msg)
			}
		}()
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("GET", "/", nil)
		New(Options{Store: st, Logger: quiet})(c)
		Named(c, "nope")
	}()
}

// TestCommit checks that Commit stores the changes before the handler
// goes on, returns the store's error to the handler without the
// ErrorHandler, and that later changes are committed at the end.
func TestCommit(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: memstore.New()}
	a := newApp(t, Options{Store: st})
	a.POST("/commit", func(c *gin.Context) {
		Set(c, "k", c.Query("v"))
		if err := Commit(c); err != nil {
			c.String(http.StatusOK, "commit failed: %v", errors.Is(err, ErrUnavailable))
			return
		}
		data, _, err := st.Load(context.Background(), a.cfg.prefix+ID(c), 0)
		_, values, _ := decodePayload(data)
		var v string
		Msgpack.Unmarshal(values["k"], &v)
		Set(c, "k2", "late")
		c.String(http.StatusOK, "stored %s %v", v, err)
	})
	br := newBrowser(t, a)
	wantBody(t, br.do("POST", "/commit?v=early"), 200, "stored early <nil>")
	wantBody(t, br.do("GET", "/get?k=k2"), 200, "late true")
	st.failSave.Store(true)
	wantBody(t, br.do("POST", "/commit?v=again"), 200, "commit failed: true")
	if errs := a.drainErrs(); len(errs) != 0 {
		t.Fatalf("errors reached c.Errors: %v", errs)
	}
}

// TestNewMany checks one middleware with several sessions: each keeps its
// own, Named picks one, the last is the default, and a repeated name
// panics.
func TestNewMany(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	r := gin.New()
	r.Use(NewMany(
		Options{Store: st, Cookie: CookieOptions{Name: "a"}, KeyPrefix: testPrefix(t), Logger: quiet},
		Options{Store: st, Cookie: CookieOptions{Name: "b"}, KeyPrefix: testPrefix(t), Logger: quiet},
	))
	r.POST("/set", func(c *gin.Context) {
		Set(Named(c, "a"), "k", "in a")
		Set(c, "k", "in b")
		c.String(http.StatusOK, "ok") // both commit before this body
	})
	r.GET("/get", func(c *gin.Context) {
		va, _ := Get[string](Named(c, "a"), "k")
		vb, _ := Get[string](Named(c, "b"), "k")
		c.String(http.StatusOK, "%s|%s", va, vb)
	})
	br := newBrowser(t, r)
	if rec := br.do("POST", "/set"); len(rec.Result().Cookies()) != 2 {
		t.Fatalf("cookies %v", rec.Result().Cookies())
	}
	wantBody(t, br.do("GET", "/get"), 200, "in a|in b")
	defer func() {
		if recover() == nil {
			t.Fatal("NewMany with a repeated cookie name did not panic")
		}
	}()
	NewMany(Options{Store: st}, Options{Store: st})
}
