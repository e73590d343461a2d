package ginsession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// quiet discards log lines: the tests check c.Errors instead.
var quiet = slog.New(slog.DiscardHandler)

// app is a gin engine with the routes the tests drive. errs receives the
// gin errors of every request that had any.
type app struct {
	*gin.Engine
	cfg  *config
	errs chan error
}

func newApp(t testing.TB, opts Options) *app {
	t.Helper()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = testPrefix(t)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	a := &app{Engine: gin.New(), cfg: newConfig(opts), errs: make(chan error, 1000)}
	a.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, _ any) { c.AbortWithStatus(http.StatusInternalServerError) }))
	a.Use(func(c *gin.Context) {
		c.Next()
		for _, e := range c.Errors {
			a.errs <- e.Err
		}
	})
	a.Use(a.cfg.handle)
	a.GET("/none", func(c *gin.Context) { c.String(http.StatusOK, "none") })
	a.GET("/get", func(c *gin.Context) {
		v, ok := Get[string](c, c.DefaultQuery("k", "k"))
		c.String(http.StatusOK, "%s %v", v, ok)
	})
	a.POST("/set", func(c *gin.Context) {
		if err := Set(c, c.DefaultQuery("k", "k"), c.Query("v")); err != nil {
			c.String(http.StatusOK, "error: %v", err)
			return
		}
		c.String(http.StatusOK, "ok")
	})
	a.POST("/delete", func(c *gin.Context) {
		Delete(c, c.DefaultQuery("k", "k"))
		c.String(http.StatusOK, "ok")
	})
	a.POST("/clear", func(c *gin.Context) {
		Clear(c)
		c.Status(http.StatusNoContent)
	})
	a.POST("/add", func(c *gin.Context) {
		item := c.Query("item")
		Update(c, "cart", func(cart []string) []string { return append(cart, item) })
		c.Status(http.StatusNoContent)
	})
	a.GET("/cart", func(c *gin.Context) {
		cart, _ := Get[[]string](c, "cart")
		c.String(http.StatusOK, strings.Join(cart, ","))
	})
	a.POST("/regenerate", func(c *gin.Context) {
		Regenerate(c)
		c.Status(http.StatusNoContent)
	})
	a.POST("/destroy", func(c *gin.Context) {
		Destroy(c)
		c.Redirect(http.StatusSeeOther, "/")
	})
	a.POST("/flash", func(c *gin.Context) {
		AddFlash(c, c.Query("m"))
		c.Redirect(http.StatusSeeOther, "/flashes")
	})
	a.GET("/flashes", func(c *gin.Context) {
		c.String(http.StatusOK, strings.Join(Flashes[string](c), ","))
	})
	a.GET("/keys", func(c *gin.Context) { c.String(http.StatusOK, strings.Join(Keys(c), ",")) })
	return a
}

// drainErrs returns the gin errors recorded so far.
func (a *app) drainErrs() []error {
	var out []error
	for {
		select {
		case e := <-a.errs:
			out = append(out, e)
		default:
			return out
		}
	}
}

// raw returns what the store holds for the browser's session.
func (a *app) raw(t testing.TB, st store.Store, id string) ([]byte, uint64, error) {
	t.Helper()
	return st.Load(context.Background(), a.cfg.prefix+id, 0)
}

func sessionCookie(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == DefaultCookieName {
			return c
		}
	}
	return nil
}

func wantBody(t testing.TB, rec *httptest.ResponseRecorder, code int, body string) {
	t.Helper()
	if rec.Code != code || rec.Body.String() != body {
		t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), code, body)
	}
}

// TestRoundTrips checks the round-trip budget of every kind of request.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, func(t *testing.T, b backend) {
		a := newApp(t, Options{Store: b.store})
		br := newBrowser(t, a)
		step := func(name, method, path string, wantTrips int64, wantCookie bool) *httptest.ResponseRecorder {
			t.Helper()
			before := b.trips.Load()
			rec := br.do(method, path)
			got := b.trips.Load() - before
			if got != wantTrips && !(wantTrips == 2 && got == 3 && name == "warm-up change") {
				t.Errorf("%s: %d round trips, want %d", name, got, wantTrips)
			}
			if got := sessionCookie(rec) != nil; got != wantCookie {
				t.Errorf("%s: Set-Cookie sent = %v, want %v", name, got, wantCookie)
			}
			return rec
		}
		step("untouched, no cookie", "GET", "/none", 0, false)
		step("read, no cookie", "GET", "/get", 0, false)
		step("first write", "POST", "/set?v=1", 1, true)
		step("untouched, cookie", "GET", "/none", 0, false)
		wantBody(t, step("read", "GET", "/get", 1, true), 200, "1 true")
		step("unchanged write", "POST", "/set?v=1", 1, true)
		// The first conditional write may load the script (EvalSha falls back to Eval).
		step("warm-up change", "POST", "/set?v=2", 2, true)
		step("change", "POST", "/set?v=3", 2, true)
		step("update", "POST", "/add?item=x", 2, true)
		wantBody(t, step("read", "GET", "/get", 1, true), 200, "3 true")
		step("delete one key", "POST", "/delete", 2, true)
		rec := step("empty the session", "POST", "/clear", 2, true)
		if c := sessionCookie(rec); c == nil || c.MaxAge >= 0 {
			t.Errorf("emptying the session did not expire the cookie: %v", c)
		}
		step("read after emptying", "GET", "/get", 0, false)
	})
}

// TestEqualValueNotRewritten checks that setting, or updating to, a value
// equal to the stored one costs only the load, also for maps, which
// msgpack encodes in Go's random iteration order; and that a real change
// is still written.
func TestEqualValueNotRewritten(t *testing.T) {
	t.Parallel()
	for _, codec := range []struct {
		name  string
		codec Codec
	}{{"msgpack", Msgpack}, {"json", JSON}} {
		t.Run(codec.name, func(t *testing.T) {
			t.Parallel()
			b := memBackend(t)
			a := newApp(t, Options{Store: b.store, Codec: codec.codec})
			// A fresh map each time, filled in a random order, so that
			// its encoding's order differs from the stored one's.
			prefs := func(changed bool) map[string]any {
				m := make(map[string]any)
				for _, i := range rand.Perm(32) {
					m["key"+strconv.Itoa(i)] = map[string]int{"a": i, "b": -i, "c": 2 * i}
				}
				if changed {
					m["key7"] = map[string]int{"a": 7, "b": -7, "c": 15}
				}
				return m
			}
			a.POST("/prefs", func(c *gin.Context) {
				if err := Set(c, "prefs", prefs(c.Query("changed") != "")); err != nil {
					t.Error(err)
				}
				c.Status(http.StatusNoContent)
			})
			a.POST("/prefs/update", func(c *gin.Context) {
				if err := Update(c, "prefs", func(map[string]any) map[string]any { return prefs(false) }); err != nil {
					t.Error(err)
				}
				c.Status(http.StatusNoContent)
			})
			br := newBrowser(t, a)
			trips := func(path string) int64 {
				t.Helper()
				before := b.trips.Load()
				if rec := br.do("POST", path); rec.Code != http.StatusNoContent {
					t.Fatalf("%s: status %d", path, rec.Code)
				}
				return b.trips.Load() - before
			}
			if n := trips("/prefs"); n != 1 {
				t.Fatalf("first Set: %d round trips, want 1", n)
			}
			for i := range 10 {
				if n := trips("/prefs"); n != 1 {
					t.Fatalf("Set of an equal map, round %d: %d round trips, want 1 (the load)", i, n)
				}
				if n := trips("/prefs/update"); n != 1 {
					t.Fatalf("Update to an equal map, round %d: %d round trips, want 1 (the load)", i, n)
				}
			}
			if n := trips("/prefs?changed=1"); n != 2 {
				t.Fatalf("Set of a changed map: %d round trips, want 2", n)
			}
			if n := trips("/prefs"); n != 2 {
				t.Fatalf("Set back to the first map: %d round trips, want 2", n)
			}
		})
	}
}

// TestSameValue checks the comparison that decides whether a Set changed
// anything, on encodings that differ only in map order and on ones made
// of the same bytes that hold different values.
func TestSameValue(t *testing.T) {
	t.Parallel()
	enc := func(v any) []byte {
		b, err := Msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Two encodings of one map in both entry orders, built by hand so that
	// the test does not depend on Go's map iteration order.
	ab := append(append([]byte{0x82}, enc("a")...), enc(1)...)
	ab = append(append(ab, enc("b")...), enc(2)...)
	ba := append(append([]byte{0x82}, enc("b")...), enc(2)...)
	ba = append(append(ba, enc("a")...), enc(1)...)
	swapped := append(append([]byte{0x82}, enc("a")...), enc(2)...) // a:2, b:1: the same bytes as ab
	swapped = append(append(swapped, enc("b")...), enc(1)...)
	cfg := newConfig(Options{Logger: quiet})
	jsonCfg := newConfig(Options{Logger: quiet, Codec: JSON})
	for _, tc := range []struct {
		name string
		cfg  *config
		a, b []byte
		want bool
	}{
		{"equal bytes", cfg, enc(5), enc(5), true},
		{"other number", cfg, enc(5), enc(6), false},
		{"map in another order", cfg, ab, ba, true},
		{"map with the values swapped", cfg, ab, swapped, false},
		{"nested in a list", cfg, append([]byte{0x91}, ab...), append([]byte{0x91}, ba...), true},
		{"strings of the same letters", cfg, enc("ab"), enc("ba"), false},
		{"not msgpack", cfg, []byte{0x82, 0xff, 0x00}, []byte{0x82, 0x00, 0xff}, false},
		{"JSON compares bytes", jsonCfg, []byte(`{"a":1,"b":2}`), []byte(`{"b":2,"a":1}`), false},
	} {
		if got := tc.cfg.sameValue(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameValue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCheckMsgpack checks the length check that runs before the msgpack
// decoder: every encoding of every kind passes whole and fails when cut
// short or followed by more, and lengths larger than the data fail.
func TestCheckMsgpack(t *testing.T) {
	t.Parallel()
	values := []any{
		nil, true, false, 0, 127, 128, 255, 65535, 1 << 20, 1 << 40, -1, -32, -33, -200, -40000, -1 << 40,
		uint64(1 << 63), float32(1.5), 2.5, "", "short", strings.Repeat("s", 31), strings.Repeat("s", 32),
		strings.Repeat("s", 256), strings.Repeat("s", 70000), []byte{}, []byte("bin"), make([]byte, 300),
		make([]byte, 70000), time.Unix(1700000000, 0), time.Unix(1700000000, 5), time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC),
		[]int{}, []int{1, 2, 3}, make([]int, 20), make([]int, 70000), map[string]int{},
		map[string]any{"a": []any{1, "x", map[string]bool{"t": true}}}, map[int]string{1: "one"},
		struct{ A, B int }{1, 2},
	}
	for _, v := range values {
		enc, err := Msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMsgpack(enc); err != nil {
			t.Errorf("%T %.40v: encoding %x… rejected: %v", v, v, enc[:min(len(enc), 8)], err)
			continue
		}
		for _, cut := range []int{0, 1, len(enc) / 2, len(enc) - 1} {
			if cut < len(enc) && checkMsgpack(enc[:cut]) == nil {
				t.Errorf("%T %.40v: the first %d of %d bytes accepted", v, v, cut, len(enc))
			}
		}
		if checkMsgpack(append(enc, 0)) == nil {
			t.Errorf("%T %.40v: accepted with a byte after it", v, v)
		}
	}
	for _, bad := range [][]byte{
		{0xdf, 0xff, 0xff, 0xff, 0xff},       // a map of 4 billion entries
		{0xdd, 0x00, 0x10, 0x00, 0x00, 0x01}, // an array of a million in 6 bytes
		{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},  // a 4 GiB string
		{0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01}, // a 2 GiB ext
		{0xc1},                               // never used
		{0x92, 0x01},                         // an array one short
	} {
		if checkMsgpack(bad) == nil {
			t.Errorf("%x accepted", bad)
		}
		var v any
		if Msgpack.Unmarshal(bad, &v) == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// TestTTLRenewedOnRead checks that a read renews the expiry in the store
// (rolling lifetime) without rewriting the payload.
func TestTTLRenewedOnRead(t *testing.T) {
	t.Parallel()
	b := miniredisBackend(t)
	a := newApp(t, Options{Store: b.store, Lifetime: time.Hour})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=x")
	key := a.cfg.prefix + br.cookie()
	b.mr.FastForward(40 * time.Minute)
	if ttl := b.mr.TTL(key); ttl != 20*time.Minute {
		t.Fatalf("TTL before read = %v", ttl)
	}
	before, _ := b.mr.Get(key)
	wantBody(t, br.do("GET", "/get"), 200, "x true")
	if ttl := b.mr.TTL(key); ttl != time.Hour {
		t.Fatalf("TTL after read = %v, want 1h", ttl)
	}
	if after, _ := b.mr.Get(key); after != before {
		t.Fatal("a read rewrote the payload")
	}
	b.mr.FastForward(59 * time.Minute)
	wantBody(t, br.do("GET", "/get"), 200, "x true")
	b.mr.FastForward(61 * time.Minute)
	wantBody(t, br.do("GET", "/get"), 200, " false")
}

// TestValueTypes checks that every kind of value comes back as it was
// stored, with both codecs, and that the wrong type reads as absent.
func TestValueTypes(t *testing.T) {
	t.Parallel()
	type inner struct {
		Tags []string
		At   time.Time
	}
	type product struct {
		SKU   string
		Price float64
		Qty   int
		In    inner
		Attrs map[string]int
	}
	now := time.Date(2026, 11, 25, 10, 30, 0, 123456789, time.UTC)
	values := []struct {
		name string
		set  any
		get  func(c *gin.Context) (any, bool)
	}{
		{"int", 42, func(c *gin.Context) (any, bool) { return Get[int](c, "v") }},
		{"negative int", -7, func(c *gin.Context) (any, bool) { return Get[int](c, "v") }},
		{"int64", int64(1) << 60, func(c *gin.Context) (any, bool) { return Get[int64](c, "v") }},
		{"uint", uint(1) << 63, func(c *gin.Context) (any, bool) { return Get[uint](c, "v") }},
		{"float64", 3.25, func(c *gin.Context) (any, bool) { return Get[float64](c, "v") }},
		{"bool", true, func(c *gin.Context) (any, bool) { return Get[bool](c, "v") }},
		{"string", "héllo", func(c *gin.Context) (any, bool) { return Get[string](c, "v") }},
		{"bytes", []byte{0, 1, 255}, func(c *gin.Context) (any, bool) { return Get[[]byte](c, "v") }},
		{"time", now, func(c *gin.Context) (any, bool) { v, ok := Get[time.Time](c, "v"); return v.UTC(), ok }},
		{"slice", []string{"a", "b"}, func(c *gin.Context) (any, bool) { return Get[[]string](c, "v") }},
		{"int slice", []int{1, 2, 300}, func(c *gin.Context) (any, bool) { return Get[[]int](c, "v") }},
		{"map", map[string]int{"a": 1, "b": 2}, func(c *gin.Context) (any, bool) { return Get[map[string]int](c, "v") }},
		{"struct", product{SKU: "tea", Price: 4.5, Qty: 2, In: inner{Tags: []string{"green"}, At: now}, Attrs: map[string]int{"g": 50}},
			func(c *gin.Context) (any, bool) {
				p, ok := Get[product](c, "v")
				p.In.At = p.In.At.UTC()
				return p, ok
			}},
		{"pointer", &inner{Tags: []string{"x"}, At: now}, func(c *gin.Context) (any, bool) {
			p, ok := Get[*inner](c, "v")
			if p != nil {
				p.At = p.At.UTC()
			}
			return p, ok
		}},
	}
	for _, codec := range []struct {
		name  string
		codec Codec
	}{{"msgpack", Msgpack}, {"json", JSON}} {
		for _, v := range values {
			t.Run(codec.name+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				r := gin.New()
				r.Use(New(Options{Store: memstore.New(), Codec: codec.codec, Logger: quiet}))
				r.POST("/", func(c *gin.Context) {
					if err := Set(c, "v", v.set); err != nil {
						t.Error(err)
					}
				})
				var got any
				var ok, wrongOK bool
				r.GET("/", func(c *gin.Context) {
					got, ok = v.get(c)
					if v.name == "bool" {
						_, wrongOK = Get[string](c, "v")
					} else {
						_, wrongOK = Get[bool](c, "v")
					}
				})
				br := newBrowser(t, r)
				br.do("POST", "/")
				br.do("GET", "/")
				if !ok || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", v.set) {
					t.Fatalf("got %#v, %v; want %#v", got, ok, v.set)
				}
				if wrongOK {
					t.Fatal("a value read as the wrong type was reported present")
				}
			})
		}
	}
}

// TestGetAny checks what a value read as any looks like: msgpack's widest
// types, not its narrowest.
// TestMsgpackMarshal checks the pooled encoder behind Msgpack: each
// result is a slice of its own, a failed encoding leaves nothing behind
// for the next one, and values larger than the pooled buffers encode too.
func TestMsgpackMarshal(t *testing.T) {
	t.Parallel()
	first, err := Msgpack.Marshal("first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Msgpack.Marshal(map[string]any{"bad": make(chan int)}); err == nil {
		t.Fatal("a chan encoded without an error")
	}
	big := strings.Repeat("x", maxPooledBuffer+1)
	for _, v := range []string{"second", big, "third"} {
		raw, err := Msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := Msgpack.Unmarshal(raw, &got); err != nil || got != v {
			t.Fatalf("round trip of a %d-byte string: %d bytes, %v", len(v), len(got), err)
		}
	}
	var got string
	if err := Msgpack.Unmarshal(first, &got); err != nil || got != "first" {
		t.Fatalf("the first result now decodes as %q, %v: a later Marshal wrote over it", got, err)
	}
}

func TestGetAny(t *testing.T) {
	t.Parallel()
	r := gin.New()
	r.Use(New(Options{Store: memstore.New(), Logger: quiet}))
	r.POST("/", func(c *gin.Context) { Set(c, "n", 5); Set(c, "l", []string{"a"}) })
	var n, l any
	r.GET("/", func(c *gin.Context) { n, _ = Get[any](c, "n"); l, _ = Get[any](c, "l") })
	br := newBrowser(t, r)
	br.do("POST", "/")
	br.do("GET", "/")
	if fmt.Sprintf("%T %T", n, l) != "int64 []interface {}" {
		t.Fatalf("Get[any] gave %T and %T", n, l)
	}
}

// TestCommitBeforeHeaders checks that every way of starting a response
// commits the session and sends the cookie first.
func TestCommitBeforeHeaders(t *testing.T) {
	t.Parallel()
	writes := map[string]func(c *gin.Context){
		"String":         func(c *gin.Context) { c.String(200, "x") },
		"JSON":           func(c *gin.Context) { c.JSON(200, gin.H{"a": 1}) },
		"Write":          func(c *gin.Context) { c.Writer.Write([]byte("x")) },
		"WriteString":    func(c *gin.Context) { c.Writer.WriteString("x") },
		"WriteHeaderNow": func(c *gin.Context) { c.Writer.WriteHeader(202); c.Writer.WriteHeaderNow() },
		"Flush":          func(c *gin.Context) { c.Writer.Flush() },
		"Status only":    func(c *gin.Context) { c.Status(204) },
		"Redirect":       func(c *gin.Context) { c.Redirect(303, "/") },
		"nothing":        func(c *gin.Context) {},
		"ResponseController": func(c *gin.Context) {
			http.NewResponseController(c.Writer).Flush()
		},
		"Set after Status": func(c *gin.Context) { c.Status(201); Set(c, "late", "1"); c.String(201, "x") },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := memstore.New()
			a := newApp(t, Options{Store: st})
			a.POST("/w", func(c *gin.Context) { Set(c, "k", "v"); write(c) })
			br := newBrowser(t, a)
			rec := br.do("POST", "/w")
			if sessionCookie(rec) == nil {
				t.Fatalf("no session cookie; headers %v", rec.Header())
			}
			if _, _, err := a.raw(t, st, br.cookie()); err != nil {
				t.Fatalf("session not stored: %v", err)
			}
			wantBody(t, br.do("GET", "/get"), 200, "v true")
			if name == "Set after Status" {
				wantBody(t, br.do("GET", "/get?k=late"), 200, "1 true")
			}
			if errs := a.drainErrs(); len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
		})
	}
}

// TestChangeAfterResponse checks that a change made after the response
// started is saved when the session has a cookie, and reported when it
// would need one.
func TestChangeAfterResponse(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := newApp(t, Options{Store: st})
	a.POST("/late", func(c *gin.Context) {
		c.String(200, "sent")
		Set(c, "k", "late")
	})
	a.POST("/late-regenerate", func(c *gin.Context) {
		c.String(200, "sent")
		if err := Regenerate(c); !errors.Is(err, ErrHeadersSent) {
			t.Errorf("Regenerate after the response started: %v", err)
		}
	})

	// A new visitor: the session would need a cookie that can't be sent.
	br := newBrowser(t, a)
	wantBody(t, br.do("POST", "/late"), 200, "sent")
	if br.cookie() != "" {
		t.Fatal("cookie sent after the body")
	}
	errs := a.drainErrs()
	if len(errs) != 1 || !errors.Is(errs[0], ErrHeadersSent) {
		t.Fatalf("errors = %v, want ErrHeadersSent", errs)
	}

	// An existing session: the late change is saved.
	br.do("POST", "/set?v=early")
	id := br.cookie()
	wantBody(t, br.do("POST", "/late"), 200, "sent")
	wantBody(t, br.do("GET", "/get"), 200, "late true")
	if br.cookie() != id {
		t.Fatal("session ID changed")
	}
	br.do("POST", "/late-regenerate")
	if br.cookie() != id {
		t.Fatal("session ID changed after a refused Regenerate")
	}
	if errs := a.drainErrs(); len(errs) != 0 {
		t.Fatalf("errors = %v", errs)
	}
}

// TestPanicCommitsNothing checks that a handler that panics leaves the
// session as it was.
func TestPanicCommitsNothing(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	a.POST("/panic", func(c *gin.Context) {
		Set(c, "k", "from a panicking handler")
		panic("boom")
	})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=before")
	if rec := br.do("POST", "/panic"); rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	wantBody(t, br.do("GET", "/get"), 200, "before true")
}

// flaky wraps a store and fails the operations switched on.
type flaky struct {
	store.Store
	failLoad, failSave atomic.Bool
}

var errDown = errors.New("store is down")

func (f *flaky) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if f.failLoad.Load() {
		return nil, 0, errDown
	}
	return f.Store.Load(ctx, key, ttl)
}

func (f *flaky) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if f.failSave.Load() {
		return 0, errDown
	}
	return f.Store.Save(ctx, key, data, version, ttl)
}

// TestLoadFailure checks that a store failure while loading answers 503,
// never overwrites the stored session, and that service comes back with
// the store.
func TestLoadFailure(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: memstore.New()}
	a := newApp(t, Options{Store: st})
	a.POST("/degraded", func(c *gin.Context) {
		if _, _, err := Lookup[string](c, "k"); err != nil {
			c.String(200, "degraded: %v", errors.Is(err, ErrUnavailable))
			return
		}
		c.String(200, "fine")
	})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=precious")
	id := br.cookie()
	before, version, err := a.raw(t, st.Store, id)
	if err != nil {
		t.Fatal(err)
	}

	st.failLoad.Store(true)
	for _, req := range []struct{ method, path string }{
		{"GET", "/get"}, {"POST", "/set?v=overwrite"}, {"POST", "/clear"},
		{"POST", "/add?item=x"}, {"POST", "/regenerate"}, {"POST", "/flash?m=x"}, {"GET", "/keys"},
	} {
		rec := br.do(req.method, req.path)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s with the store down: status %d, want 503", req.method, req.path, rec.Code)
		}
		if c := sessionCookie(rec); c != nil {
			t.Errorf("%s %s with the store down sent a cookie: %v", req.method, req.path, c)
		}
		errs := a.drainErrs()
		if len(errs) == 0 || !errors.Is(errs[0], ErrUnavailable) || !errors.Is(errs[0], errDown) {
			t.Errorf("%s %s: c.Errors = %v, want ErrUnavailable wrapping the store's error", req.method, req.path, errs)
		}
	}
	wantBody(t, br.do("POST", "/degraded"), 200, "degraded: true")
	if errs := a.drainErrs(); len(errs) != 0 {
		t.Errorf("Lookup's error also went to c.Errors: %v", errs)
	}
	after, afterVersion, err := a.raw(t, st.Store, id)
	if err != nil || string(after) != string(before) || afterVersion != version {
		t.Fatalf("stored session changed while the store was failing: %v", err)
	}

	st.failLoad.Store(false)
	wantBody(t, br.do("GET", "/get"), 200, "precious true")
	if br.cookie() != id {
		t.Fatal("session ID changed")
	}
}

// TestStoreDownOnMiniredis fails the real protocol path: every command
// errors while the server is set to fail.
func TestStoreDownOnMiniredis(t *testing.T) {
	t.Parallel()
	b := miniredisBackend(t)
	a := newApp(t, Options{Store: b.store})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=precious")
	key := a.cfg.prefix + br.cookie()
	before, _ := b.mr.Get(key)
	b.mr.SetError("LOADING Redis is loading the dataset in memory")
	if rec := br.do("POST", "/set?v=overwrite"); rec.Code != 503 {
		t.Fatalf("status %d", rec.Code)
	}
	b.mr.SetError("")
	if after, _ := b.mr.Get(key); after != before {
		t.Fatal("stored session changed")
	}
	wantBody(t, br.do("GET", "/get"), 200, "precious true")
}

// TestSaveFailure checks that a failed commit is reported, not lost
// silently, and that the next request sees the old data.
func TestSaveFailure(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: memstore.New()}
	a := newApp(t, Options{Store: st})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=old")
	st.failSave.Store(true)
	if rec := br.do("POST", "/set?v=new"); rec.Code != 503 || rec.Body.Len() != 0 {
		t.Fatalf("got %d %q, want 503 and no body", rec.Code, rec.Body.String())
	}
	// The handler's "ok" was discarded, and gin recorded that.
	if errs := a.drainErrs(); len(errs) != 2 || !errors.Is(errs[0], ErrUnavailable) || !errors.Is(errs[1], ErrResponseReplaced) {
		t.Fatalf("errors = %v", errs)
	}
	st.failSave.Store(false)
	wantBody(t, br.do("GET", "/get"), 200, "old true")

	// A custom ErrorHandler replaces the 503.
	var got error
	a2 := newApp(t, Options{Store: st, ErrorHandler: func(c *gin.Context, err error) { got = err }})
	st.failSave.Store(true)
	if rec := newBrowser(t, a2).do("POST", "/set?v=x"); rec.Code != 200 || !errors.Is(got, errDown) {
		t.Fatalf("custom handler: status %d, err %v", rec.Code, got)
	}
}

// TestConcurrentChanges checks that concurrent requests of one session
// keep each other's changes.
func TestConcurrentChanges(t *testing.T) {
	t.Parallel()
	forEachBackend(t, true, func(t *testing.T, b backend) {
		a := newApp(t, Options{Store: b.store})
		a.POST("/setn", func(c *gin.Context) {
			Set(c, "k"+c.Query("n"), c.Query("n"))
			c.Status(204)
		})
		br := newBrowser(t, a)
		br.do("POST", "/set?k=seed&v=1")
		cookie := &http.Cookie{Name: DefaultCookieName, Value: br.cookie()}

		run := func(n int, path func(i int) string) {
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					req := httptest.NewRequest("POST", path(i), nil)
					req.AddCookie(cookie)
					rec := httptest.NewRecorder()
					a.ServeHTTP(rec, req)
					if rec.Code != 204 {
						t.Errorf("%s: status %d", path(i), rec.Code)
					}
				})
			}
			wg.Wait()
		}
		run(40, func(i int) string { return "/add?item=i" + strconv.Itoa(i) })
		run(20, func(i int) string { return "/setn?n=" + strconv.Itoa(i) })
		if errs := a.drainErrs(); len(errs) > 0 {
			t.Fatalf("errors: %v", errs[0])
		}

		cart := strings.Split(br.do("GET", "/cart").Body.String(), ",")
		seen := map[string]bool{}
		for _, it := range cart {
			seen[it] = true
		}
		if len(cart) != 40 || len(seen) != 40 {
			t.Errorf("cart kept %d of 40 concurrent additions (%d distinct)", len(cart), len(seen))
		}
		keys := br.do("GET", "/keys").Body.String()
		if n := strings.Count(keys, ",") + 1; n != 20+2 { // k0..k19, cart, seed
			t.Errorf("kept %d keys, want 22: %s", n, keys)
		}
	})
}

// TestUpdateReplays forces one conflict and checks that Update's function
// runs again on the value the other request committed.
func TestUpdateReplays(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	loaded, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	a.POST("/slow-add", func(c *gin.Context) {
		Update(c, "cart", func(cart []string) []string {
			calls.Add(1)
			return append(cart, "slow")
		})
		close(loaded)
		<-release
		c.Status(204)
	})
	br := newBrowser(t, a)
	br.do("POST", "/add?item=first")
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest("POST", "/slow-add", nil)
		req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: br.cookie()})
		a.ServeHTTP(httptest.NewRecorder(), req)
	}()
	<-loaded
	br.do("POST", "/add?item=fast")
	close(release)
	<-done
	wantBody(t, br.do("GET", "/cart"), 200, "first,fast,slow")
	if calls.Load() != 2 {
		t.Fatalf("Update function ran %d times, want 2", calls.Load())
	}
}

// TestEndedSessionNotResurrected checks that a request that loaded the
// session before another request destroyed or regenerated it cannot bring
// it back with a late commit.
func TestEndedSessionNotResurrected(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"/destroy", "/regenerate"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, true, func(t *testing.T, b backend) {
				a := newApp(t, Options{Store: b.store})
				loaded, release := make(chan struct{}), make(chan struct{})
				a.POST("/slow-set", func(c *gin.Context) {
					Get[string](c, "k")
					close(loaded)
					<-release
					Set(c, "k", "late write")
					c.Status(204)
				})
				br := newBrowser(t, a)
				br.do("POST", "/set?v=user")
				oldID := br.cookie()
				var slow *httptest.ResponseRecorder
				done := make(chan struct{})
				go func() {
					defer close(done)
					req := httptest.NewRequest("POST", "/slow-set", nil)
					req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: oldID})
					slow = httptest.NewRecorder()
					a.ServeHTTP(slow, req)
				}()
				<-loaded
				br.do("POST", end)
				close(release)
				<-done
				if _, _, err := a.raw(t, b.store, oldID); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("old session is back after %s: %v", end, err)
				}
				if c := sessionCookie(slow); c != nil {
					t.Fatalf("late request sent a cookie: %v", c)
				}
				if end == "/regenerate" {
					if br.cookie() == oldID || br.cookie() == "" {
						t.Fatal("no new ID")
					}
					wantBody(t, br.do("GET", "/get"), 200, "user true")
				} else {
					wantBody(t, br.do("GET", "/get"), 200, " false")
				}
			})
		})
	}
}

// TestExpiry checks that a session past its lifetime never loads, even
// before the store evicts it, and that the absolute timeout holds however
// often the session is used.
func TestExpiry(t *testing.T) {
	t.Parallel()
	t.Run("lifetime", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, Options{Store: memstore.New(), Lifetime: time.Second})
		br := newBrowser(t, a)
		br.do("POST", "/set?v=x")
		time.Sleep(1100 * time.Millisecond)
		wantBody(t, br.do("GET", "/get"), 200, " false")
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, Options{Store: memstore.New(), AbsoluteTimeout: time.Hour})
		now := time.Now()
		var mu sync.Mutex
		a.cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		br := newBrowser(t, a)
		rec := br.do("POST", "/set?v=x")
		if c := sessionCookie(rec); c.MaxAge != 3600 {
			t.Fatalf("cookie Max-Age %d, want the absolute timeout", c.MaxAge)
		}
		id := br.cookie()
		for range 5 { // used every 10 minutes: still ends after an hour
			advance(10 * time.Minute)
			wantBody(t, br.do("GET", "/get"), 200, "x true")
		}
		advance(10*time.Minute - time.Second)
		rec = br.do("GET", "/get")
		wantBody(t, rec, 200, "x true")
		if c := sessionCookie(rec); c.MaxAge != 1 {
			t.Fatalf("cookie Max-Age %d near the end, want 1", c.MaxAge)
		}
		advance(time.Second)
		br.setCookie(id) // as a browser with a slow clock would still send it
		wantBody(t, br.do("GET", "/get"), 200, " false")
		if _, _, err := a.raw(t, a.cfg.store, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session still stored: %v", err)
		}
	})
}

// TestBadCookies checks that a cookie the middleware did not issue starts
// a fresh session: never an error status, never the client's ID.
func TestBadCookies(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", 32))
	other := []byte(strings.Repeat("o", 32))
	unknown := newID()
	cases := []struct {
		name   string
		signed bool
		value  string
	}{
		{"empty", false, ""},
		{"garbage", false, "garbage"},
		{"unknown ID", false, unknown},
		{"bad alphabet", false, strings.Repeat("*", idLen)},
		{"one short", false, unknown[1:]},
		{"oversized", false, strings.Repeat("A", 4000)},
		{"dot in an unsigned ID", false, unknown[:20] + "." + unknown[21:]},
		{"unsigned when signing", true, unknown},
		{"signed by another key", true, sign(unknown, other)},
		{"signature cut", true, sign(unknown, key)[:signedLen-1]},
		{"signature altered", true, sign(unknown, key)[:signedLen-2] + "AA"},
		{"signed for another ID", true, newID() + sign(unknown, key)[idLen:]},
		{"valid signature, unknown ID", true, sign(unknown, key)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Store: memstore.New()}
			if tc.signed {
				opts.SigningKeys = [][]byte{key}
			}
			a := newApp(t, opts)
			br := newBrowser(t, a)
			br.setCookie(tc.value)
			wantBody(t, br.do("GET", "/get"), 200, " false")
			rec := br.do("POST", "/set?v=fresh")
			wantBody(t, rec, 200, "ok")
			c := sessionCookie(rec)
			if c == nil {
				t.Fatal("no cookie for the fresh session")
			}
			id := parseCookie(c.Value, a.cfg.keys)
			if id == "" || strings.Contains(tc.value, id) {
				t.Fatalf("fresh session has ID %q from cookie %q", id, c.Value)
			}
			if _, _, err := a.raw(t, a.cfg.store, unknown); !errors.Is(err, store.ErrNotFound) {
				t.Fatal("the client's ID was adopted")
			}
			if errs := a.drainErrs(); len(errs) != 0 {
				t.Fatalf("errors: %v", errs)
			}
		})
	}
}

// TestSigningKeyRotation checks that every key verifies and the first
// signs.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := []byte(strings.Repeat("1", 32)), []byte(strings.Repeat("2", 40))
	st := memstore.New()
	prefix := testPrefix(t)
	before := newApp(t, Options{Store: st, KeyPrefix: prefix, SigningKeys: [][]byte{oldKey}})
	br := newBrowser(t, before)
	br.do("POST", "/set?v=signed")
	if v := br.cookie(); parseCookie(v, [][]byte{oldKey}) == "" || parseCookie(v, [][]byte{newKey}) != "" {
		t.Fatalf("cookie %q not signed by the old key", v)
	}
	id := parseCookie(br.cookie(), [][]byte{oldKey})
	br.h = newApp(t, Options{Store: st, KeyPrefix: prefix, SigningKeys: [][]byte{newKey, oldKey}})
	wantBody(t, br.do("GET", "/get"), 200, "signed true")
	if got := parseCookie(br.cookie(), [][]byte{newKey}); got != id {
		t.Fatalf("refreshed cookie not re-signed with the new key")
	}
}

// TestRegenerate checks that Regenerate moves the data to a new ID and
// deletes the old entry.
func TestRegenerate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, func(t *testing.T, b backend) {
		a := newApp(t, Options{Store: b.store})
		br := newBrowser(t, a)
		br.do("POST", "/set?v=cart")
		oldID := br.cookie()
		before := b.trips.Load()
		br.do("POST", "/regenerate")
		if n := b.trips.Load() - before; n != 3 {
			t.Errorf("regenerate took %d round trips, want 3 (load, save, delete)", n)
		}
		if br.cookie() == oldID {
			t.Fatal("ID unchanged")
		}
		if _, _, err := a.raw(t, b.store, oldID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("old entry: %v", err)
		}
		wantBody(t, br.do("GET", "/get"), 200, "cart true")

		// A new visitor who regenerates and writes gets one session.
		nb := newBrowser(t, a)
		a.POST("/login", func(c *gin.Context) { Regenerate(c); Set(c, "user", "ann"); c.Status(204) })
		nb.do("POST", "/login")
		wantBody(t, nb.do("GET", "/get?k=user"), 200, "ann true")
	})
}

// TestDestroy checks that Destroy deletes the entry and expires the
// cookie, and that the request may start a new session after it.
func TestDestroy(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	a.POST("/relogin", func(c *gin.Context) { Destroy(c); Set(c, "k", "new"); c.Status(204) })
	a.POST("/destroy-unread", func(c *gin.Context) { Destroy(c); c.Status(204) })
	br := newBrowser(t, a)
	br.do("POST", "/set?v=x")
	id := br.cookie()
	rec := br.do("POST", "/destroy")
	if c := sessionCookie(rec); c == nil || c.MaxAge >= 0 {
		t.Fatalf("cookie not expired: %v", c)
	}
	if _, _, err := a.raw(t, a.cfg.store, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("entry: %v", err)
	}
	br.do("POST", "/set?v=x")
	id = br.cookie()
	br.do("POST", "/relogin")
	if br.cookie() == id || br.cookie() == "" {
		t.Fatal("no new session after Destroy and Set")
	}
	wantBody(t, br.do("GET", "/get"), 200, "new true")
	id = br.cookie()
	br.do("POST", "/destroy-unread")
	if _, _, err := a.raw(t, a.cfg.store, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("entry after Destroy without a read: %v", err)
	}
}

// TestFlashes checks that flashes are typed and read once.
func TestFlashes(t *testing.T) {
	t.Parallel()
	type notice struct{ Level, Text string }
	a := newApp(t, Options{Store: memstore.New()})
	a.POST("/notice", func(c *gin.Context) { AddFlash(c, notice{"info", "saved"}); c.Status(204) })
	var got []notice
	a.GET("/notices", func(c *gin.Context) { got = Flashes[notice](c); c.Status(204) })
	br := newBrowser(t, a)
	br.do("POST", "/flash?m=one")
	br.do("POST", "/notice")
	br.do("POST", "/flash?m=two")
	wantBody(t, br.do("GET", "/keys"), 200, "")
	wantBody(t, br.do("GET", "/flashes"), 200, "one,two")
	wantBody(t, br.do("GET", "/flashes"), 200, "")
	br.do("GET", "/notices")
	if len(got) != 1 || got[0] != (notice{"info", "saved"}) {
		t.Fatalf("notices %v", got)
	}
	// The last flash read left the session empty: it is gone.
	if br.cookie() != "" {
		t.Fatal("empty session kept its cookie")
	}
}

// TestOptionsValidation checks that New refuses what cannot work, with a
// message naming the field.
func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"short lifetime", Options{Lifetime: time.Millisecond}, "Lifetime"},
		{"sub-second absolute", Options{AbsoluteTimeout: time.Millisecond}, "AbsoluteTimeout"},
		{"negative max size", Options{MaxSize: -1}, "MaxSize"},
		{"header name", Options{Header: "X Token"}, "Options.Header"},
		{"__Host- without Secure", Options{Cookie: CookieOptions{Name: "__Host-sid"}}, "Secure"},
		{"__Host- with Domain", Options{Cookie: CookieOptions{Name: "__Host-sid", Secure: true, Domain: "shop.test"}}, "Domain"},
		{"__Host- with Path", Options{Cookie: CookieOptions{Name: "__host-sid", Secure: true, Path: "/app"}}, "Path"},
		{"__Secure- without Secure", Options{Cookie: CookieOptions{Name: "__Secure-sid"}}, "Secure"},
		{"cookie name", Options{Cookie: CookieOptions{Name: "a b"}}, "Cookie.Name"},
		{"cookie path", Options{Cookie: CookieOptions{Path: "/a;b"}}, "Cookie.Path"},
		{"cookie domain", Options{Cookie: CookieOptions{Domain: "a b"}}, "Cookie.Domain"},
		{"SameSite None", Options{Cookie: CookieOptions{SameSite: http.SameSiteNoneMode}}, "Secure"},
		{"Partitioned", Options{Cookie: CookieOptions{Partitioned: true}}, "Secure"},
		{"short key", Options{SigningKeys: [][]byte{[]byte("short")}}, "SigningKeys[0]"},
		{"negative attempts", Options{CommitAttempts: -1}, "CommitAttempts"},
		{"negative timeout", Options{StoreTimeout: -1}, "StoreTimeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %q does not name %s", msg, tc.want)
				}
			}()
			tc.opts.Store = memstore.New()
			New(tc.opts)
		})
	}
}

// TestCookieAttributes checks the cookie the middleware sends.
func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts CookieOptions
		want []string
		not  []string
	}{
		{"defaults", CookieOptions{}, []string{"Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=1209600", "Expires="}, []string{"Secure", "Domain"}},
		{"production", CookieOptions{Name: "sid", Secure: true, Domain: "shop.test", Path: "/app", SameSite: http.SameSiteStrictMode, Partitioned: true},
			[]string{"sid=", "Secure", "Domain=shop.test", "Path=/app", "SameSite=Strict", "Partitioned"}, nil},
		{"browser session", CookieOptions{BrowserSession: true}, nil, []string{"Max-Age", "Expires"}},
		{"__Host- prefix", CookieOptions{Name: "__Host-sid", Secure: true}, []string{"__Host-sid=", "Secure", "Path=/"}, []string{"Domain"}},
		{"__Secure- prefix", CookieOptions{Name: "__Secure-sid", Secure: true, Domain: "shop.test", Path: "/app"}, []string{"__Secure-sid=", "Secure", "Domain=shop.test"}, nil},
		{"script readable", CookieOptions{ScriptReadable: true, SameSite: http.SameSiteDefaultMode}, nil, []string{"HttpOnly", "SameSite"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := gin.New()
			r.Use(New(Options{Store: memstore.New(), Cookie: tc.opts, Logger: quiet}))
			r.GET("/", func(c *gin.Context) { Set(c, "k", 1) })
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			line := rec.Header().Get("Set-Cookie")
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(line, w) {
					t.Errorf("%q has %q", line, w)
				}
			}
			if len(rec.Result().Cookies()) != 1 {
				t.Errorf("net/http does not parse %q", line)
			}
		})
	}
}

// TestOtherCookiesKept checks that the middleware replaces only its own
// Set-Cookie line when it sends the cookie twice in one response.
func TestOtherCookiesKept(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	a.POST("/two", func(c *gin.Context) {
		c.SetCookie("theme", "dark", 0, "/", "", false, false)
		Set(c, "k", "1")
		c.Status(200) // commits and sets the cookie
		Destroy(c)
		Set(c, "k", "2") // a new session: the cookie is set again
		c.SetCookie("lang", "en", 0, "/", "", false, false)
		c.String(200, "ok")
	})
	rec := newBrowser(t, a).do("POST", "/two")
	var names []string
	for _, c := range rec.Result().Cookies() {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "theme,session,lang" {
		t.Fatalf("cookies %v", names)
	}
}

// TestNoMiddleware checks the message a handler gets without the
// middleware.
func TestNoMiddleware(t *testing.T) {
	t.Parallel()
	defer func() {
		if msg := fmt.Sprint(recover()); !strings.Contains(msg, "router.Use(ginsession.New") {
			t.Fatalf("panic %q", msg)
		}
	}()
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	Get[int](c, "k")
}

// TestHijack checks that a hijacked connection still commits the session.
func TestHijack(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	a.GET("/hijack", func(c *gin.Context) {
		Set(c, "k", "hijacked")
		conn, rw, err := c.Writer.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		rw.Flush()
	})
	srv := httptest.NewServer(a)
	defer srv.Close()
	br := newBrowser(t, a)
	br.do("POST", "/set?v=before")
	req, _ := http.NewRequest("GET", srv.URL+"/hijack", nil)
	req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: br.cookie()})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantBody(t, br.do("GET", "/get"), 200, "hijacked true")
}

// TestNothingStoredForNothing checks that a session emptied within the
// request that created it is never stored, and that a change from a
// goroutine after the request ended is refused, not lost silently.
func TestNothingStoredForNothing(t *testing.T) {
	t.Parallel()
	b := memBackend(t)
	a := newApp(t, Options{Store: b.store})
	late := make(chan error, 1)
	a.POST("/set-delete", func(c *gin.Context) {
		Set(c, "k", "v")
		Delete(c, "k")
		cp := c.Copy()
		go func() {
			time.Sleep(50 * time.Millisecond)
			late <- Set(cp, "k", "too late")
		}()
		c.Status(204)
	})
	br := newBrowser(t, a)
	rec := br.do("POST", "/set-delete")
	if n := b.trips.Load(); n != 0 || sessionCookie(rec) != nil {
		t.Fatalf("%d round trips, cookie %v", n, sessionCookie(rec))
	}
	if err := <-late; !errors.Is(err, ErrRequestDone) {
		t.Fatalf("late Set: %v", err)
	}
}

// TestCopyRacesFinish races a change from a goroutine holding a c.Copy()
// against the end of a request that never touched the session itself, the
// path on which the middleware skips its lock. Each change must either be
// refused with ErrRequestDone or be saved; none may vanish.
func TestCopyRacesFinish(t *testing.T) {
	t.Parallel()
	b := memBackend(t)
	a := newApp(t, Options{Store: b.store})
	// Yield where finish has found the session untouched: a change made
	// now must be seen by finish and committed, or refused.
	a.cfg.idleFinish = runtime.Gosched
	results := make(chan error, 1)
	a.POST("/race", func(c *gin.Context) {
		cp := c.Copy()
		v := c.Query("v")
		go func() { results <- Set(cp, "k", v) }()
		spin, _ := strconv.Atoi(c.Query("spin"))
		for range spin { // land the goroutine's Set before, at or after the end
			runtime.Gosched()
		}
		if c.Query("body") != "" {
			c.String(http.StatusOK, "ok")
		}
	})
	a.POST("/destroy-late", func(c *gin.Context) {
		cp := c.Copy()
		go func() { results <- Destroy(cp) }()
		runtime.Gosched()
	})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=start")
	id := br.cookie() // unsigned: the cookie is the ID
	var saved, refused int
	for i := range 400 {
		v := strconv.Itoa(i)
		path := "/race?v=" + v + "&spin=" + strconv.Itoa(i%7)
		if i%2 == 1 {
			path += "&body=1" // the hooks run before the body, not only finish
		}
		br.do("POST", path)
		err := <-results
		switch {
		case errors.Is(err, ErrRequestDone):
			refused++
		case err != nil:
			t.Fatalf("round %d: Set from the copy: %v", i, err)
		default:
			saved++
			data, _, err := a.raw(t, b.store, id)
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			_, values, err := decodePayload(data)
			var got string
			if err == nil {
				err = Msgpack.Unmarshal(values["k"], &got)
			}
			if err != nil || got != v {
				t.Fatalf("round %d: Set from the copy returned nil, but the store holds %q (%v)", i, got, err)
			}
		}
		if errs := a.drainErrs(); len(errs) > 0 {
			t.Fatalf("round %d: request errors %v", i, errs)
		}
	}
	t.Logf("changes from the copy: %d saved, %d refused with ErrRequestDone", saved, refused)

	// Destroy from a copy: nil means the entry is gone, ErrRequestDone
	// that it is still there.
	for i := range 100 {
		br.do("POST", "/set?v=again")
		id := br.cookie()
		br.do("POST", "/destroy-late")
		err := <-results
		_, _, loadErr := a.raw(t, b.store, id)
		switch {
		case err == nil && !errors.Is(loadErr, store.ErrNotFound):
			t.Fatalf("round %d: Destroy from the copy returned nil, but the entry is there (%v)", i, loadErr)
		case errors.Is(err, ErrRequestDone) && loadErr != nil:
			t.Fatalf("round %d: Destroy from the copy was refused, but the entry is gone (%v)", i, loadErr)
		case err != nil && !errors.Is(err, ErrRequestDone):
			t.Fatalf("round %d: Destroy from the copy: %v", i, err)
		}
		a.drainErrs()
	}
}

// TestPayloadFormat checks the stored envelope: a version byte first, then
// each value encoded on its own; and that a payload this version cannot
// read (damaged, or from a newer format) is left untouched while the
// request gets a fresh session.
func TestPayloadFormat(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := newApp(t, Options{Store: st})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=x")
	id := br.cookie()
	data, _, err := a.raw(t, st, id)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != payloadV2 {
		t.Fatalf("payload starts with %#x, want the format version %d", data[0], payloadV2)
	}
	created, values, err := decodePayload(data)
	if err != nil || time.Since(time.Unix(0, created)) > time.Minute {
		t.Fatalf("decode: created %d, %v", created, err)
	}
	var v string
	if err := Msgpack.Unmarshal(values["k"], &v); err != nil || v != "x" {
		t.Fatalf("value %q, %v", v, err)
	}

	for name, payload := range map[string][]byte{
		"newer format": append([]byte{payloadV2 + 1}, data[1:]...),
		"truncated":    data[:len(data)-1],
		"garbage":      []byte("\x01\xff\xff\xff"),
	} {
		t.Run(name, func(t *testing.T) {
			st := memstore.New()
			a := newApp(t, Options{Store: st})
			key := a.cfg.prefix + id
			if _, err := st.Save(context.Background(), key, payload, 0, time.Hour); err != nil {
				t.Fatal(err)
			}
			br := newBrowser(t, a)
			br.setCookie(id)
			wantBody(t, br.do("GET", "/get"), 200, " false")
			if errs := a.drainErrs(); len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) {
				t.Fatalf("errors %v, want ErrCorrupt", errs)
			}
			br.do("POST", "/set?v=fresh")
			if br.cookie() == id {
				t.Fatal("the undecodable session's ID was reused")
			}
			if got, _, err := st.Load(context.Background(), key, 0); err != nil || string(got) != string(payload) {
				t.Fatalf("undecodable entry changed: %v", err)
			}
		})
	}
}

// TestCorruptStoreEntry checks that an entry the store itself reports as
// corrupt gives a fresh session, not a 503, and is left alone.
func TestCorruptStoreEntry(t *testing.T) {
	t.Parallel()
	b := miniredisBackend(t)
	a := newApp(t, Options{Store: b.store})
	id := newID()
	key := a.cfg.prefix + id
	b.mr.Set(key, "short") // fewer bytes than redisstore's version header
	br := newBrowser(t, a)
	br.setCookie(id)
	wantBody(t, br.do("GET", "/get"), 200, " false")
	if errs := a.drainErrs(); len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) || !errors.Is(errs[0], store.ErrCorrupt) {
		t.Fatalf("errors %v, want ErrCorrupt", errs)
	}
	br.do("POST", "/set?v=fresh")
	if br.cookie() == id {
		t.Fatal("the corrupt entry's ID was reused")
	}
	if got, _ := b.mr.Get(key); got != "short" {
		t.Fatalf("corrupt entry changed to %q", got)
	}
}

// blocking is a store whose Save waits for its context to end.
type blocking struct{ store.Store }

func (blocking) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestCommitOutlivesClient checks that a client that goes away does not
// cancel the commit of a change its handler made, and that StoreTimeout
// bounds a commit to a store that hangs.
func TestCommitOutlivesClient(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	a.POST("/leave", func(c *gin.Context) {
		Get[string](c, "k")
		c.Request.Context().Value(cancelKey{}).(context.CancelFunc)() // the client hangs up
		Set(c, "k", "saved anyway")
		c.Status(204)
	})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=before")
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("POST", "/leave", nil).WithContext(context.WithValue(ctx, cancelKey{}, cancel))
	req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: br.cookie()})
	a.ServeHTTP(httptest.NewRecorder(), req)
	wantBody(t, br.do("GET", "/get"), 200, "saved anyway true")

	hung := newApp(t, Options{Store: blocking{memstore.New()}, StoreTimeout: 50 * time.Millisecond})
	rec := newBrowser(t, hung).do("POST", "/set?v=x")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("commit to a hung store: status %d, want 503", rec.Code)
	}
	if errs := hung.drainErrs(); len(errs) != 2 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("errors %v, want the deadline", errs)
	}
}

type cancelKey struct{}
