package sessions

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memstore"
)

// TestConcurrentSetsBothKept: two requests of one session, each setting a
// key of its own at the same time, both keep their key. gin-contrib/sessions
// writes the whole session back, so the later Save drops the other key.
func TestConcurrentSetsBothKept(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		opts, log := b.options(t)
		var loaded sync.WaitGroup
		r := gin.New()
		r.Use(Sessions(sessionName, opts))
		r.GET("/start", func(c *gin.Context) {
			Default(c).Set("start", true)
			c.String(200, ok)
		})
		r.GET("/set/:key", func(c *gin.Context) {
			s := Default(c)
			s.Get("start") // both requests load the same version...
			loaded.Done()
			loaded.Wait() // ...before either commits
			s.Set(c.Param("key"), c.Param("key"))
			if err := s.Save(); err != nil {
				c.String(http.StatusInternalServerError, err.Error())
				return
			}
			c.String(200, ok)
		})
		r.GET("/get", func(c *gin.Context) {
			s := Default(c)
			for _, k := range []string{"a", "b"} {
				if got := s.Get(k); got != k {
					t.Errorf("Get(%q) = %#v: a concurrent request's change was lost", k, got)
				}
			}
			c.String(200, ok)
		})
		br := newBrowser(t, r)
		br.get("/start")
		loaded.Add(2)
		codes := make(chan int, 2)
		for _, k := range []string{"a", "b"} {
			go func() { codes <- br.do("/set/" + k).Code }()
		}
		for range 2 {
			if code := <-codes; code != 200 {
				t.Errorf("concurrent request: status %d", code)
			}
		}
		br.get("/get")
		if log.conflictCount() == 0 {
			t.Error("the two commits did not race: the test proves nothing")
		}
	})
}

// TestOptionsMaxAge checks how Options maps onto ginsession's cookie
// options, and that later responses keep the attributes.
func TestOptionsMaxAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		opts, _ := b.options(t)
		opts.Lifetime = 2 * time.Hour
		r := gin.New()
		r.Use(Sessions(sessionName, opts))
		r.GET("/browser", func(c *gin.Context) {
			s := Default(c)
			s.Set("user", "ann")
			s.Options(Options{MaxAge: 0, HttpOnly: true, SameSite: http.SameSiteStrictMode})
			saveOK(t, s)
			c.String(200, ok)
		})
		r.GET("/persistent", func(c *gin.Context) {
			s := Default(c)
			s.Options(Options{Path: "/", MaxAge: 3600, Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
			saveOK(t, s)
			c.String(200, ok)
		})
		r.GET("/read", func(c *gin.Context) {
			if got := Default(c).Get("user"); got != "ann" {
				t.Errorf("Get(user) = %#v, want ann", got)
			}
			c.String(200, ok)
		})
		r.GET("/logout", func(c *gin.Context) {
			s := Default(c)
			s.Options(Options{MaxAge: -1})
			saveOK(t, s)
			c.String(200, ok)
		})
		br := newBrowser(t, r)

		line := setCookie(br.get("/browser"), sessionName)
		if a := attrWithPrefix(line, "Max-Age"); a != "" || !hasAttr(line, "HttpOnly") || !hasAttr(line, "SameSite=Strict") {
			t.Errorf("MaxAge 0, HttpOnly, Strict: Set-Cookie %q", line)
		}

		line = setCookie(br.get("/persistent"), sessionName)
		want := []string{"Max-Age=7200", "Secure", "SameSite=None", "Partitioned"}
		for _, a := range want {
			if attrWithPrefix(line, a) != a {
				t.Errorf("MaxAge 3600 with Lifetime 2h: Set-Cookie %q lacks %s", line, a)
			}
		}
		if hasAttr(line, "HttpOnly") {
			t.Errorf("HttpOnly false: Set-Cookie %q has HttpOnly", line)
		}

		// A later request that only reads renews the cookie with the
		// attributes kept in the session.
		line = setCookie(br.do("/read"), sessionName)
		for _, a := range want {
			if attrWithPrefix(line, a) != a {
				t.Errorf("later request: Set-Cookie %q lacks %s", line, a)
			}
		}

		line = setCookie(br.get("/logout"), sessionName)
		if !hasAttr(line, "Max-Age=0") {
			t.Errorf("MaxAge -1: Set-Cookie %q does not expire the cookie", line)
		}
		r.GET("/gone", func(c *gin.Context) {
			if got := Default(c).Get("user"); got != nil {
				t.Errorf("after MaxAge -1: Get(user) = %#v, want nil", got)
			}
			c.String(200, ok)
		})
		br.get("/gone")
	})
}

// TestSaveReturnsErrors: what Set, Options and the rest could not do is
// returned by the next Save, and recorded in c.Errors; the Save after
// that starts afresh.
func TestSaveReturnsErrors(t *testing.T) {
	cases := []struct {
		name string
		do   func(s Session)
		want error
	}{
		{"too large", func(s Session) { s.Set("big", strings.Repeat("x", 1000)) }, ginsession.ErrTooLarge},
		{"flash too large", func(s Session) { s.AddFlash(strings.Repeat("x", 1000)) }, ginsession.ErrTooLarge},
		{"cookie options", func(s Session) { s.Options(Options{SameSite: http.SameSiteNoneMode}) }, ginsession.ErrCookieOptions},
		{"unencodable", func(s Session) { s.Set("f", func() {}) }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := gin.New()
			r.Use(Sessions(sessionName, ginsession.Options{Store: memstore.New(), MaxSize: 256}))
			r.GET("/", func(c *gin.Context) {
				s := Default(c)
				tc.do(s)
				s.Set("small", 1) // fine
				err := Default(c).Save()
				if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("Save = %v, want %v", err, tc.want)
				}
				if len(c.Errors) != 1 {
					t.Errorf("c.Errors = %v, want the error", c.Errors)
				}
				if err := s.Save(); err != nil {
					t.Errorf("second Save = %v, want nil", err)
				}
				if s.Get("small") != 1 {
					t.Error("the valid change was not kept")
				}
				c.String(200, ok)
			})
			newBrowser(t, r).get("/")
		})
	}
}

// TestSaveOptional: changes are committed without Save, including those
// made after a Save.
func TestSaveOptional(t *testing.T) {
	r := gin.New()
	r.Use(Sessions(sessionName, ginsession.Options{Store: memstore.New()}))
	r.GET("/set", func(c *gin.Context) {
		s := Default(c)
		s.Set("a", 1)
		saveOK(t, s)
		s.Set("b", 2) // after Save
		c.String(200, ok)
	})
	r.GET("/get", func(c *gin.Context) {
		s := Default(c)
		if s.Get("a") != 1 || s.Get("b") != 2 {
			t.Errorf("a, b = %#v, %#v; want 1, 2", s.Get("a"), s.Get("b"))
		}
		if s.ID() == "" || s.ID() != ginsession.ID(c) {
			t.Errorf("ID() = %q, want ginsession.ID", s.ID())
		}
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	br.get("/set")
	br.get("/get")
}

// TestFlashKeys: flash messages queued under different flash keys are
// read apart, in order, once.
func TestFlashKeys(t *testing.T) {
	r := gin.New()
	r.Use(Sessions(sessionName, ginsession.Options{Store: memstore.New()}))
	r.GET("/add", func(c *gin.Context) {
		s := Default(c)
		s.AddFlash("first")
		s.AddFlash("other", "errors")
		s.AddFlash(2)
		s.AddFlash(user{Name: "ann"})
		ginsession.AddFlash(c, "core") // ginsession's own, left alone
		c.String(200, ok)
	})
	r.GET("/read", func(c *gin.Context) {
		s := Default(c)
		if got, want := s.Flashes(), []any{"first", 2, user{Name: "ann"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("Flashes() = %#v, want %#v", got, want)
		}
		if got := s.Flashes(); got != nil {
			t.Errorf("Flashes() again = %#v, want nil", got)
		}
		if got := s.Flashes("errors"); !reflect.DeepEqual(got, []any{"other"}) {
			t.Errorf(`Flashes("errors") = %#v, want ["other"]`, got)
		}
		c.String(200, ok)
	})
	r.GET("/check", func(c *gin.Context) {
		s := Default(c)
		if got := append(s.Flashes(), s.Flashes("errors")...); len(got) != 0 {
			t.Errorf("flash messages read twice: %#v", got)
		}
		if got := ginsession.Flashes[string](c); !reflect.DeepEqual(got, []string{"core"}) {
			t.Errorf("ginsession.Flashes = %q, want [core]", got)
		}
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	br.get("/add")
	br.get("/read")
	br.get("/check")
}

// TestDefault: Default returns one Session per request, which keeps its
// error for Save; a context copy gets its own; DefaultMany of an unknown
// name panics; a request that only calls Default stores nothing.
func TestDefault(t *testing.T) {
	r := gin.New()
	r.Use(SessionsMany([]string{"a", "b"}, ginsession.Options{Store: memstore.New()}))
	r.GET("/", func(c *gin.Context) {
		if Default(c) != Default(c) || DefaultMany(c, "a") != DefaultMany(c, "a") {
			t.Error("Default returns a new Session each time")
		}
		if Default(c.Copy()) == Default(c) {
			t.Error("a copy of the context shares the request's Session")
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Error("DefaultMany of an unknown name did not panic")
				}
			}()
			DefaultMany(c, "nope")
		}()
		c.String(200, ok)
	})
	if w := newBrowser(t, r).get("/"); len(w.Header().Values("Set-Cookie")) != 0 {
		t.Errorf("a session untouched sets a cookie: %q", w.Header().Values("Set-Cookie"))
	}
}

func TestSessionsManyPanicsOnRepeatedName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	SessionsMany([]string{"a", "a"}, ginsession.Options{Store: memstore.New()})
}
