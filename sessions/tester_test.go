package sessions

import (
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

const (
	sessionName = "mysession"
	ok          = "ok"
)

// TestTester runs the cases of gin-contrib/sessions' tester package,
// rewritten for this package, against every backend: what a program
// written for gin-contrib/sessions expects keeps holding.
func TestTester(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"GetSet", testGetSet},
		{"DeleteKey", testDeleteKey},
		{"Flashes", testFlashes},
		{"Clear", testClear},
		{"Options", testOptions},
		{"Many", testMany},
		{"ManyStores", testManyStores},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, tc.run)
		})
	}
}

// testGetSet: a value set and saved in one request is read in the next.
func testGetSet(t *testing.T, b backend) {
	opts, _ := b.options(t)
	r := gin.New()
	r.Use(Sessions(sessionName, opts))
	r.GET("/set", func(c *gin.Context) {
		s := Default(c)
		s.Set("key", ok)
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/get", func(c *gin.Context) {
		s := Default(c)
		if got := s.Get("key"); got != ok {
			t.Errorf("Get(key) = %#v, want %q", got, ok)
		}
		saveOK(t, s)
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	if w := br.get("/set"); setCookie(w, sessionName) == "" {
		t.Fatalf("no %s cookie: %v", sessionName, w.Header())
	}
	br.get("/get")
}

// testDeleteKey: a deleted key reads nil in the next request.
func testDeleteKey(t *testing.T, b backend) {
	opts, _ := b.options(t)
	r := gin.New()
	r.Use(Sessions(sessionName, opts))
	r.GET("/set", func(c *gin.Context) {
		s := Default(c)
		s.Set("key", ok)
		s.Set("other", 1) // so that the session outlives the delete
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/delete", func(c *gin.Context) {
		s := Default(c)
		s.Delete("key")
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/get", func(c *gin.Context) {
		s := Default(c)
		if got := s.Get("key"); got != nil {
			t.Errorf("Get(key) after Delete = %#v, want nil", got)
		}
		if got := s.Get("other"); got != 1 {
			t.Errorf("Get(other) = %#v, want 1", got)
		}
		saveOK(t, s)
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	br.get("/set")
	br.get("/delete")
	br.get("/get")
}

// testFlashes: a flash message is read once.
func testFlashes(t *testing.T, b backend) {
	opts, _ := b.options(t)
	opts.Cookie.Domain = "localhost"
	r := gin.New()
	r.Use(Sessions(sessionName, opts))
	r.GET("/set", func(c *gin.Context) {
		s := Default(c)
		s.AddFlash(ok)
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/flash", func(c *gin.Context) {
		s := Default(c)
		if got := s.Flashes(); len(got) != 1 || got[0] != ok {
			t.Errorf("Flashes() = %#v, want [%q]", got, ok)
		}
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/check", func(c *gin.Context) {
		s := Default(c)
		if got := s.Flashes(); len(got) != 0 {
			t.Errorf("Flashes() after reading = %#v, want none", got)
		}
		saveOK(t, s)
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	if w := br.get("/set"); !hasAttr(setCookie(w, sessionName), "Domain=localhost") {
		t.Errorf("cookie %q lacks Domain=localhost", setCookie(w, sessionName))
	}
	br.get("/flash")
	br.get("/check")
}

// testClear: nothing set before Clear is left.
func testClear(t *testing.T, b backend) {
	data := map[string]string{"key": "val", "foo": "bar"}
	opts, _ := b.options(t)
	r := gin.New()
	r.Use(Sessions(sessionName, opts))
	r.GET("/set", func(c *gin.Context) {
		s := Default(c)
		for k, v := range data {
			s.Set(k, v)
		}
		saveOK(t, s) // stored, then cleared below
		s.Clear()
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/check", func(c *gin.Context) {
		s := Default(c)
		for k, v := range data {
			if s.Get(k) == v {
				t.Errorf("Get(%q) = %q after Clear", k, v)
			}
		}
		saveOK(t, s)
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	br.get("/set")
	br.get("/check")
}

// testOptions: Options gives the session's cookie its attributes,
// replacing those of the middleware's options.
func testOptions(t *testing.T, b backend) {
	opts, _ := b.options(t)
	opts.Cookie.Domain = "localhost"
	r := gin.New()
	r.Use(Sessions(sessionName, opts))
	r.GET("/domain", func(c *gin.Context) {
		s := Default(c)
		s.Set("key", ok)
		s.Options(Options{Path: "/foo/bar/bat"})
		saveOK(t, s)
		c.String(200, ok)
	})
	r.GET("/path", func(c *gin.Context) {
		s := Default(c)
		s.Set("key", ok)
		saveOK(t, s)
		c.String(200, ok)
	})
	line := setCookie(newBrowser(t, r).get("/domain"), sessionName)
	if !hasAttr(line, "Path=/foo/bar/bat") {
		t.Errorf("Set-Cookie %q: want Path=/foo/bar/bat", line)
	}
	if a := attrWithPrefix(line, "Domain="); a != "" {
		t.Errorf("Set-Cookie %q: Options left %s", line, a)
	}
	line = setCookie(newBrowser(t, r).get("/path"), sessionName)
	if !hasAttr(line, "Domain=localhost") || !hasAttr(line, "Path=/") {
		t.Errorf("Set-Cookie %q: want the middleware's Domain=localhost and Path=/", line)
	}
}

// testMany: two sessions in one request, each with its cookie, and its
// entries under a KeyPrefix of its own.
func testMany(t *testing.T, b backend) {
	opts, log := b.options(t)
	r := gin.New()
	r.Use(SessionsMany([]string{"a", "b"}, opts))
	r.GET("/set", func(c *gin.Context) {
		sa := DefaultMany(c, "a")
		sa.Set("hello", "world")
		saveOK(t, sa)
		sb := DefaultMany(c, "b")
		sb.Set("foo", "bar")
		saveOK(t, sb)
		c.String(200, ok)
	})
	r.GET("/get", func(c *gin.Context) {
		sa := DefaultMany(c, "a")
		if got := sa.Get("hello"); got != "world" {
			t.Errorf("a: Get(hello) = %#v, want world", got)
		}
		if got := sa.Get("foo"); got != nil {
			t.Errorf("a: Get(foo) = %#v, want nil: that is b's", got)
		}
		sb := DefaultMany(c, "b")
		if got := sb.Get("foo"); got != "bar" {
			t.Errorf("b: Get(foo) = %#v, want bar", got)
		}
		if Default(c).Get("foo") != "bar" {
			t.Error("Default is not the session installed last")
		}
		saveOK(t, sa)
		saveOK(t, sb)
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	w := br.get("/set")
	if setCookie(w, "a") == "" || setCookie(w, "b") == "" {
		t.Fatalf("want cookies a and b: %v", w.Header().Values("Set-Cookie"))
	}
	br.get("/get")
	checkPrefixes(t, log.keys(), opts.KeyPrefix+"a:", opts.KeyPrefix+"b:")
}

// testManyStores: two sessions with stores of their own.
func testManyStores(t *testing.T, b backend) {
	optsA, logA := b.options(t)
	optsB, logB := b.options(t)
	r := gin.New()
	r.Use(SessionsManyStores([]SessionStore{{"a", optsA}, {"b", optsB}}))
	r.GET("/set", func(c *gin.Context) {
		DefaultMany(c, "a").Set("hello", "world")
		DefaultMany(c, "b").Set("foo", "bar")
		c.String(200, ok) // no Save: committed anyway
	})
	r.GET("/get", func(c *gin.Context) {
		if got := DefaultMany(c, "a").Get("hello"); got != "world" {
			t.Errorf("a: Get(hello) = %#v, want world", got)
		}
		if got := DefaultMany(c, "b").Get("foo"); got != "bar" {
			t.Errorf("b: Get(foo) = %#v, want bar", got)
		}
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	br.get("/set")
	br.get("/get")
	checkPrefixes(t, logA.keys(), optsA.KeyPrefix+"a:")
	checkPrefixes(t, logB.keys(), optsB.KeyPrefix+"b:")
}

// checkPrefixes checks that keys holds one key under each prefix, and
// nothing else.
func checkPrefixes(t *testing.T, keys []string, prefixes ...string) {
	t.Helper()
	var found []string
	for _, k := range keys {
		i := slices.IndexFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) })
		if i < 0 {
			t.Errorf("saved %q: not under any of %q", k, prefixes)
			continue
		}
		if !slices.Contains(found, prefixes[i]) {
			found = append(found, prefixes[i])
		}
	}
	if len(found) != len(prefixes) {
		t.Errorf("saved %q: want a key under each of %q", keys, prefixes)
	}
}
