package sharedcache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock for Cache.Now, starting on a whole second.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// originFunc answers the n-th request (from 1) that reaches the origin, at
// the time now on the test's clock.
type originFunc func(n int, now time.Time, w http.ResponseWriter, r *http.Request)

// reply returns an origin that answers with the given status and header
// fields ("Name: value"; "{n}" stands for the call number) and the body
// "response {n}".
func reply(status int, fields ...string) originFunc {
	return func(n int, _ time.Time, w http.ResponseWriter, _ *http.Request) {
		for _, f := range fields {
			name, value, _ := strings.Cut(f, ":")
			w.Header().Add(name, strings.TrimSpace(strings.ReplaceAll(value, "{n}", strconv.Itoa(n))))
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "response "+strconv.Itoa(n))
	}
}

func ok(fields ...string) originFunc { return reply(http.StatusOK, fields...) }

// withETag returns an origin that answers like ok(fields...) with ETag "v1",
// and 304 Not Modified with ETag "v1" and notModified's fields to a request
// with If-None-Match: "v1", whoever sends it, as a framework's ETag support
// does.
func withETag(notModified []string, fields ...string) originFunc {
	full := ok(append([]string{`ETag: "v1"`}, fields...)...)
	return func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			reply(http.StatusNotModified, append([]string{`ETag: "v1"`}, notModified...)...)(n, now, w, r)
			return
		}
		full(n, now, w, r)
	}
}

type step struct {
	advance time.Duration // move the clock first
	method  string        // "" is GET
	target  string        // "" is "/"
	header  []string      // request fields, "Name: value"

	want      string // StatusHeader: Hit, Revalidated or Miss
	wantBody  string // "" is not checked; "-" is an empty body
	wantCode  int    // 0 is not checked
	wantField map[string][]string
}

type cacheTest struct {
	name      string
	heuristic time.Duration
	origin    originFunc
	steps     []step
	wantStats *[3]int // hits, misses, stores; nil is not checked
}

func none() []string { return nil } // a field that must be absent

func runCacheTests(t *testing.T, tests []cacheTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			var mu sync.Mutex
			calls := 0
			c := &Cache{
				HeuristicTTL: tt.heuristic,
				Now:          clk.Now,
				Origin: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					calls++
					n := calls
					mu.Unlock()
					tt.origin(n, clk.Now(), w, r)
				}),
			}
			for i, s := range tt.steps {
				clk.advance(s.advance)
				method := s.method
				if method == "" {
					method = http.MethodGet
				}
				target := s.target
				if target == "" {
					target = "/"
				}
				req := httptest.NewRequest(method, "http://example.com"+target, nil)
				for _, f := range s.header {
					name, value, _ := strings.Cut(f, ":")
					req.Header.Add(name, strings.TrimSpace(value))
				}
				rec := httptest.NewRecorder()
				c.ServeHTTP(rec, req)
				res := rec.Result()
				body, _ := io.ReadAll(res.Body)
				if got := res.Header.Get(StatusHeader); got != s.want {
					t.Errorf("step %d (%s %s %q): %s = %q, want %q", i, method, target, s.header, StatusHeader, got, s.want)
				}
				if s.wantCode != 0 && res.StatusCode != s.wantCode {
					t.Errorf("step %d: status %d, want %d", i, res.StatusCode, s.wantCode)
				}
				switch {
				case s.wantBody == "-" && len(body) != 0:
					t.Errorf("step %d: body %q, want none", i, body)
				case s.wantBody != "" && s.wantBody != "-" && string(body) != s.wantBody:
					t.Errorf("step %d: body %q, want %q", i, body, s.wantBody)
				}
				for name, want := range s.wantField {
					if got := res.Header.Values(name); !slices.Equal(got, want) {
						t.Errorf("step %d: %s = %q, want %q", i, name, got, want)
					}
				}
			}
			if tt.wantStats != nil {
				h, m, st := c.Stats()
				if got := [3]int{h, m, st}; got != *tt.wantStats {
					t.Errorf("Stats() = %v, want %v", got, *tt.wantStats)
				}
			}
		})
	}
}

// TestSetCookieReplayed shows the danger the library defends against: a
// shared cache stores a response that carries Set-Cookie, unless something
// forbids it, and replays it, cookie included, to the next visitor.
func TestSetCookieReplayed(t *testing.T) {
	t.Parallel()
	cookies := []string{"sid={n}; Path=/; HttpOnly", "csrf={n}"}
	setCookies := func(n string) []string {
		return []string{"sid=" + n + "; Path=/; HttpOnly", "csrf=" + n}
	}
	runCacheTests(t, []cacheTest{{
		name:   "public max-age",
		origin: ok("Cache-Control: public, max-age=60", "Set-Cookie: "+cookies[0], "Set-Cookie: "+cookies[1]),
		steps: []step{
			{header: []string{"Cookie: sid=alice"}, want: Miss, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": setCookies("1")}},
			{advance: 5 * time.Second, header: []string{"Cookie: sid=bob"}, want: Hit, wantBody: "response 1",
				wantField: map[string][]string{"Set-Cookie": setCookies("1"), "Age": {"5"}}},
			{want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": setCookies("1")}},
		},
		wantStats: &[3]int{2, 1, 1},
	}, {
		name:   "max-age alone",
		origin: ok("Cache-Control: max-age=60", "Set-Cookie: "+cookies[0]),
		steps: []step{
			{header: []string{"Cookie: sid=alice"}, want: Miss},
			{header: []string{"Cookie: sid=bob"}, want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": {setCookies("1")[0]}}},
		},
	}, {
		name:      "heuristic freshness",
		heuristic: time.Minute,
		origin:    ok("Set-Cookie: " + cookies[0]),
		steps: []step{
			{header: []string{"Cookie: sid=alice"}, want: Miss},
			{header: []string{"Cookie: sid=bob"}, want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": {setCookies("1")[0]}}},
		},
	}, {
		// no-cache does not protect the cookie: the origin's 304 to
		// Bob's revalidation lets the cache send Alice's stored response.
		name:   "no-cache revalidated",
		origin: withETag(nil, "Cache-Control: no-cache", "Set-Cookie: "+cookies[0]),
		steps: []step{
			{header: []string{"Cookie: sid=alice"}, want: Miss, wantBody: "response 1"},
			{header: []string{"Cookie: sid=bob"}, want: Revalidated, wantCode: 200, wantBody: "response 1",
				wantField: map[string][]string{"Set-Cookie": {setCookies("1")[0]}}},
		},
		wantStats: &[3]int{1, 1, 1},
	}, {
		name:   "max-age=0 revalidated by Last-Modified",
		origin: revalidateByDate("Cache-Control: max-age=0", "Set-Cookie: "+cookies[0]),
		steps: []step{
			{header: []string{"Cookie: sid=alice"}, want: Miss, wantBody: "response 1"},
			{header: []string{"Cookie: sid=bob"}, want: Revalidated, wantBody: "response 1",
				wantField: map[string][]string{"Set-Cookie": {setCookies("1")[0]}}},
		},
	}})
}

// revalidateByDate returns an origin whose responses have a fixed
// Last-Modified and that answers 304 to If-Modified-Since, like
// http.ServeContent.
func revalidateByDate(fields ...string) originFunc {
	const lm = "Mon, 03 Mar 2025 00:00:00 GMT"
	full := ok(append([]string{"Last-Modified: " + lm}, fields...)...)
	return func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full(n, now, w, r)
	}
}

func TestStorable(t *testing.T) {
	t.Parallel()
	twice := []step{
		{header: []string{"Cookie: sid=alice"}, want: Miss, wantBody: "response 1"},
		{header: []string{"Cookie: sid=bob"}, want: Miss, wantBody: "response 2"},
	}
	reused := []step{
		{want: Miss, wantBody: "response 1"},
		{want: Hit, wantBody: "response 1"},
	}
	runCacheTests(t, []cacheTest{
		{name: "no-store", origin: ok("Cache-Control: no-store, max-age=60", "Set-Cookie: sid={n}"), steps: twice, wantStats: &[3]int{0, 2, 0}},
		{name: "no-store upper case", origin: ok("Cache-Control: public, max-age=60", "Cache-Control: No-Store"), steps: twice},
		{name: "private", origin: ok("Cache-Control: private, max-age=60", "Set-Cookie: sid={n}"), steps: twice, wantStats: &[3]int{0, 2, 0}},
		{name: "private with public", origin: ok("Cache-Control: public, private, max-age=60"), steps: twice},
		{name: "private heuristic", heuristic: time.Hour, origin: ok("Cache-Control: private"), steps: twice},
		{name: "no-store and must-understand", origin: ok("Cache-Control: no-store, must-understand, max-age=60"), steps: reused},
		{name: "must-understand unknown status", origin: reply(299, "Cache-Control: no-store, must-understand, max-age=60"), steps: twice},
		{name: "206 not understood", origin: reply(http.StatusPartialContent, "Cache-Control: public, max-age=60"), steps: twice},
		{name: "302 with max-age", origin: reply(http.StatusFound, "Location: /x", "Cache-Control: max-age=60"), steps: []step{
			{want: Miss, wantCode: 302}, {want: Hit, wantCode: 302, wantBody: "response 1"},
		}},
		{name: "500 without freshness", heuristic: time.Hour, origin: reply(http.StatusInternalServerError), steps: twice},
		{name: "nothing that allows storing", origin: reply(http.StatusFound, "Location: /x"), steps: twice, wantStats: &[3]int{0, 2, 0}},
		{
			name:   "qualified private stores the rest",
			origin: ok(`Cache-Control: max-age=60, private="Set-Cookie, X-User"`, "Set-Cookie: sid={n}", "X-User: {n}", "X-Other: {n}"),
			steps: []step{
				{want: Miss, wantField: map[string][]string{"Set-Cookie": {"sid=1"}, "X-User": {"1"}}},
				{want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": none(), "X-User": none(), "X-Other": {"1"}}},
			},
		},
		{
			name:   "qualified private token form",
			origin: ok("Cache-Control: max-age=60, private=set-cookie", "Set-Cookie: sid={n}"),
			steps:  []step{{want: Miss}, {want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": none()}}},
		},
	})
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	auth := func(who string) []string { return []string{"Authorization: Bearer " + who} }
	notStored := []step{
		{header: auth("alice"), want: Miss, wantBody: "response 1"},
		{header: auth("bob"), want: Miss, wantBody: "response 2"},
		{want: Miss, wantBody: "response 3"},
	}
	shared := []step{
		{header: auth("alice"), want: Miss, wantBody: "response 1"},
		{header: auth("bob"), want: Hit, wantBody: "response 1"},
		{want: Hit, wantBody: "response 1"},
	}
	runCacheTests(t, []cacheTest{
		{name: "max-age", origin: ok("Cache-Control: max-age=60"), steps: notStored},
		{name: "heuristic", heuristic: time.Hour, origin: ok(), steps: notStored},
		{name: "public", origin: ok("Cache-Control: public, max-age=60"), steps: shared},
		{name: "s-maxage", origin: ok("Cache-Control: s-maxage=60"), steps: shared},
		{name: "must-revalidate", origin: ok("Cache-Control: must-revalidate, max-age=60"), steps: shared},
		{
			name:   "stored without Authorization, served to it",
			origin: ok("Cache-Control: max-age=60"),
			steps:  []step{{want: Miss}, {header: auth("bob"), want: Hit, wantBody: "response 1"}},
		},
	})
}

func TestFreshness(t *testing.T) {
	t.Parallel()
	runCacheTests(t, []cacheTest{{
		name:   "max-age expires",
		origin: ok("Cache-Control: max-age=60"),
		steps: []step{
			{want: Miss},
			{advance: 59 * time.Second, want: Hit, wantBody: "response 1", wantField: map[string][]string{"Age": {"59"}}},
			{advance: time.Second, want: Miss, wantBody: "response 2", wantField: map[string][]string{"Age": none()}},
			{want: Hit, wantBody: "response 2", wantField: map[string][]string{"Age": {"0"}}},
		},
		wantStats: &[3]int{2, 2, 2},
	}, {
		name:   "s-maxage longer than max-age",
		origin: ok("Cache-Control: max-age=10, s-maxage=100"),
		steps: []step{
			{want: Miss},
			{advance: 50 * time.Second, want: Hit, wantBody: "response 1"},
			{advance: 50 * time.Second, want: Miss, wantBody: "response 2"},
		},
	}, {
		name:   "s-maxage shorter than max-age",
		origin: ok("Cache-Control: s-maxage=10, max-age=100"),
		steps: []step{
			{want: Miss},
			{advance: 9 * time.Second, want: Hit},
			{advance: time.Second, want: Miss},
		},
	}, {
		name:   "max-age overrides Expires",
		origin: ok("Cache-Control: max-age=10", "Expires: Thu, 01 Jan 2099 00:00:00 GMT"),
		steps:  []step{{want: Miss}, {advance: 10 * time.Second, want: Miss}},
	}, {
		name: "Expires minus Date",
		origin: func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", now.Format(http.TimeFormat))
			w.Header().Set("Expires", now.Add(30*time.Second).Format(http.TimeFormat))
			ok()(n, now, w, r)
		},
		steps: []step{{want: Miss}, {advance: 29 * time.Second, want: Hit}, {advance: time.Second, want: Miss}},
	}, {
		name: "Expires without Date",
		origin: func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Expires", now.Add(30*time.Second).Format(http.TimeFormat))
			ok()(n, now, w, r)
		},
		steps: []step{{want: Miss}, {advance: 29 * time.Second, want: Hit}, {advance: time.Second, want: Miss}},
	}, {
		name:      "invalid Expires is in the past",
		heuristic: time.Hour,
		origin:    ok("Expires: 0"),
		steps:     []step{{want: Miss}, {want: Miss}},
		wantStats: &[3]int{0, 2, 2},
	}, {
		name:   "repeated max-age is stale",
		origin: ok("Cache-Control: max-age=60", "Cache-Control: max-age=60"),
		steps:  []step{{want: Miss}, {want: Miss}},
	}, {
		name:      "invalid max-age is stale, not heuristic",
		heuristic: time.Hour,
		origin:    ok("Cache-Control: max-age=soon"),
		steps:     []step{{want: Miss}, {want: Miss}},
	}, {
		name:   "huge max-age",
		origin: ok("Cache-Control: max-age=99999999999999999999999"),
		steps:  []step{{want: Miss}, {advance: 24 * 365 * time.Hour, want: Hit}},
	}, {
		name:   "Age from upstream",
		origin: ok("Cache-Control: max-age=60", "Age: 30"),
		steps: []step{
			{want: Miss, wantField: map[string][]string{"Age": {"30"}}},
			{advance: 29 * time.Second, want: Hit, wantField: map[string][]string{"Age": {"59"}}},
			{advance: time.Second, want: Miss},
		},
	}, {
		name: "old Date",
		origin: func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", now.Add(-50*time.Second).Format(http.TimeFormat))
			ok("Cache-Control: max-age=60")(n, now, w, r)
		},
		steps: []step{
			{want: Miss},
			{advance: 9 * time.Second, want: Hit, wantField: map[string][]string{"Age": {"59"}}},
			{advance: time.Second, want: Miss},
		},
	}, {
		name:      "heuristic off: stored, never fresh",
		origin:    ok(),
		steps:     []step{{want: Miss}, {want: Miss}},
		wantStats: &[3]int{0, 2, 2},
	}, {
		name:      "heuristic on",
		heuristic: time.Minute,
		origin:    ok(),
		steps:     []step{{want: Miss}, {advance: 59 * time.Second, want: Hit}, {advance: time.Second, want: Miss}},
	}, {
		name:      "heuristic 404",
		heuristic: time.Minute,
		origin:    reply(http.StatusNotFound),
		steps:     []step{{want: Miss}, {want: Hit, wantCode: 404}},
	}, {
		name:      "heuristic not for 302",
		heuristic: time.Minute,
		origin:    reply(http.StatusFound, "Location: /x"),
		steps:     []step{{want: Miss}, {want: Miss}},
	}, {
		name:      "heuristic for public 302",
		heuristic: time.Minute,
		origin:    reply(http.StatusFound, "Location: /x", "Cache-Control: public"),
		steps:     []step{{want: Miss}, {want: Hit, wantCode: 302}},
	}, {
		name:   "public without expiry, heuristic off",
		origin: ok("Cache-Control: public"),
		steps:  []step{{want: Miss}, {want: Miss}},
	}})
}

func TestVary(t *testing.T) {
	t.Parallel()
	alice, bob := []string{"Cookie: sid=alice"}, []string{"Cookie: sid=bob"}
	runCacheTests(t, []cacheTest{{
		name:   "Vary: Cookie",
		origin: ok("Cache-Control: public, max-age=60", "Vary: Cookie", "Set-Cookie: sid={n}"),
		steps: []step{
			{header: alice, want: Miss, wantBody: "response 1"},
			{header: bob, want: Miss, wantBody: "response 2"},
			{header: alice, want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": {"sid=1"}}},
			{header: bob, want: Hit, wantBody: "response 2", wantField: map[string][]string{"Set-Cookie": {"sid=2"}}},
			{want: Miss, wantBody: "response 3"},
			{want: Hit, wantBody: "response 3"},
			{header: []string{"Cookie: "}, want: Miss, wantBody: "response 4"},
		},
		wantStats: &[3]int{3, 4, 4},
	}, {
		name:   "names case-insensitive, values normalised",
		origin: ok("Cache-Control: max-age=60", "Vary: accept-encoding", "vary: ACCEPT-LANGUAGE"),
		steps: []step{
			{header: []string{"Accept-Language: en, fr"}, want: Miss, wantBody: "response 1"},
			{header: []string{"Accept-Language: en", "Accept-Language: fr"}, want: Hit, wantBody: "response 1"},
			{header: []string{"accept-language:  en ,fr "}, want: Hit, wantBody: "response 1"},
			{header: []string{"Accept-Language: fr, en"}, want: Miss, wantBody: "response 2"},
			{header: []string{"Accept-Language: en, fr", "Accept-Encoding: gzip"}, want: Miss, wantBody: "response 3"},
			{header: []string{"Accept-Language: en, fr"}, want: Hit, wantBody: "response 1"},
		},
	}, {
		name:   "Vary: *",
		origin: ok("Cache-Control: public, max-age=60", "Vary: Accept, *"),
		steps:  []step{{want: Miss}, {want: Miss}},
	}, {
		name: "the response stored last is used",
		origin: func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				ok("Cache-Control: max-age=60", "Vary: Cookie")(n, now, w, r)
			} else {
				ok("Cache-Control: max-age=60")(n, now, w, r)
			}
		},
		steps: []step{
			{header: alice, want: Miss, wantBody: "response 1"},
			{header: append([]string{"Cache-Control: no-cache"}, bob...), want: Miss, wantBody: "response 2"},
			{header: alice, want: Hit, wantBody: "response 2"},
			{header: bob, want: Hit, wantBody: "response 2"},
		},
	}})
}

func TestNoCache(t *testing.T) {
	t.Parallel()
	runCacheTests(t, []cacheTest{{
		name:   "qualified no-cache strips the fields",
		origin: ok(`Cache-Control: public, max-age=60, no-cache="Set-Cookie, X-User"`, "Set-Cookie: sid={n}", "X-User: {n}"),
		steps: []step{
			{want: Miss, wantField: map[string][]string{"Set-Cookie": {"sid=1"}, "X-User": {"1"}}},
			{want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": none(), "X-User": none()}},
			{method: http.MethodHead, want: Hit, wantBody: "-", wantField: map[string][]string{"Set-Cookie": none()}},
		},
		wantStats: &[3]int{2, 1, 1},
	}, {
		name:   "qualified no-cache, token form, kept after revalidation",
		origin: withETag(nil, `Cache-Control: max-age=10, no-cache=set-cookie`, "Set-Cookie: sid={n}"),
		steps: []step{
			{want: Miss},
			{want: Hit, wantField: map[string][]string{"Set-Cookie": none()}},
			{advance: 10 * time.Second, want: Revalidated, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": {"sid=1"}}},
		},
	}, {
		name:   "unqualified no-cache without validators",
		origin: ok("Cache-Control: public, max-age=60, no-cache", "Set-Cookie: sid={n}"),
		steps: []step{
			{want: Miss, wantBody: "response 1"},
			{want: Miss, wantBody: "response 2", wantField: map[string][]string{"Set-Cookie": {"sid=2"}}},
		},
		wantStats: &[3]int{0, 2, 2},
	}, {
		name:   "unqualified no-cache wins over qualified",
		origin: withETag([]string{"Set-Cookie: sid={n}"}, `Cache-Control: max-age=60, no-cache="Set-Cookie", no-cache`, "Set-Cookie: sid={n}"),
		steps: []step{
			{want: Miss},
			{want: Revalidated, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": {"sid=2"}}},
		},
	}, {
		name:   "304 updates stored fields and freshness",
		origin: withETag([]string{"Cache-Control: max-age=30", "Set-Cookie: sid={n}"}, "Cache-Control: max-age=10", "Set-Cookie: sid={n}", "X-Kept: yes"),
		steps: []step{
			{want: Miss},
			{advance: 10 * time.Second, want: Revalidated, wantBody: "response 1",
				wantField: map[string][]string{"Set-Cookie": {"sid=2"}, "X-Kept": {"yes"}, "Age": {"0"}}},
			{advance: 29 * time.Second, want: Hit, wantBody: "response 1", wantField: map[string][]string{"Set-Cookie": {"sid=2"}, "Age": {"29"}}},
			{advance: time.Second, want: Revalidated},
		},
		wantStats: &[3]int{3, 1, 1},
	}, {
		name:   "304 with no-store removes the stored response",
		origin: withETag([]string{"Cache-Control: no-store"}, "Cache-Control: no-cache"),
		steps:  []step{{want: Miss}, {want: Revalidated, wantBody: "response 1"}, {want: Miss, wantBody: "response 3"}},
	}, {
		name: "304 for another ETag",
		origin: func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") != "" {
				reply(http.StatusNotModified, `ETag: "other"`)(n, now, w, r)
				return
			}
			ok("Cache-Control: no-cache", `ETag: "v1"`)(n, now, w, r)
		},
		steps: []step{{want: Miss}, {want: Miss, wantCode: 200, wantBody: "response 3"}},
	}, {
		name:   "client's own conditional is forwarded",
		origin: withETag(nil, "Cache-Control: no-cache"),
		steps: []step{
			{want: Miss},
			{header: []string{`If-None-Match: "v1"`}, want: Miss, wantCode: http.StatusNotModified},
		},
	}, {
		name:   "origin answers 200 to revalidation",
		origin: ok("Cache-Control: max-age=10", `ETag: "v{n}"`),
		steps: []step{
			{want: Miss},
			{advance: 10 * time.Second, want: Miss, wantBody: "response 2"},
			{want: Hit, wantBody: "response 2"},
		},
	}})
}

func TestRequestDirectives(t *testing.T) {
	t.Parallel()
	fresh := ok("Cache-Control: max-age=60")
	runCacheTests(t, []cacheTest{{
		name:   "no-cache",
		origin: fresh,
		steps: []step{
			{want: Miss},
			{header: []string{"Cache-Control: no-cache"}, want: Miss, wantBody: "response 2"},
			{want: Hit, wantBody: "response 2"},
		},
	}, {
		name:   "no-store",
		origin: fresh,
		steps: []step{
			{header: []string{"Cache-Control: no-store"}, want: Miss},
			{want: Miss, wantBody: "response 2"},
			{header: []string{"Cache-Control: no-store"}, want: Hit, wantBody: "response 2"},
		},
	}, {
		name:   "max-age",
		origin: fresh,
		steps: []step{
			{want: Miss},
			{advance: 10 * time.Second, header: []string{"Cache-Control: max-age=10"}, want: Hit},
			{advance: time.Second, header: []string{"Cache-Control: max-age=10"}, want: Miss},
		},
	}, {
		name:   "only-if-cached",
		origin: fresh,
		steps: []step{
			{header: []string{"Cache-Control: only-if-cached"}, want: Miss, wantCode: http.StatusGatewayTimeout, wantBody: "-"},
			{want: Miss, wantBody: "response 1"},
			{header: []string{"Cache-Control: only-if-cached"}, want: Hit, wantBody: "response 1"},
		},
	}})
}

func TestHEAD(t *testing.T) {
	t.Parallel()
	runCacheTests(t, []cacheTest{{
		name:   "served from a GET",
		origin: ok("Cache-Control: max-age=60", "Set-Cookie: sid={n}"),
		steps: []step{
			{want: Miss},
			{method: http.MethodHead, want: Hit, wantBody: "-", wantField: map[string][]string{"Set-Cookie": {"sid=1"}}},
		},
		wantStats: &[3]int{1, 1, 1},
	}, {
		name:   "a HEAD serves HEADs only",
		origin: ok("Cache-Control: max-age=60", "Set-Cookie: sid={n}"),
		steps: []step{
			{method: http.MethodHead, want: Miss, wantBody: "-"},
			{method: http.MethodHead, want: Hit, wantBody: "-", wantField: map[string][]string{"Set-Cookie": {"sid=1"}}},
			{want: Miss, wantBody: "response 2"},
			{method: http.MethodHead, want: Hit, wantField: map[string][]string{"Set-Cookie": {"sid=2"}}},
		},
	}})
}

func TestInvalidation(t *testing.T) {
	t.Parallel()
	origin := func(n int, now time.Time, w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet:
			ok("Cache-Control: max-age=60")(n, now, w, r)
		case r.URL.Path == "/fail":
			reply(http.StatusForbidden)(n, now, w, r)
		default:
			reply(http.StatusSeeOther, "Location: /account", "Content-Location: http://other.example/")(n, now, w, r)
		}
	}
	runCacheTests(t, []cacheTest{{
		name:   "target URI",
		origin: origin,
		steps: []step{
			{want: Miss},
			{method: http.MethodPost, want: Miss},
			{want: Miss, wantBody: "response 3"},
		},
	}, {
		name:   "Location",
		origin: origin,
		steps: []step{
			{target: "/account", want: Miss},
			{target: "/?q=1", want: Miss},
			{target: "/account", want: Hit},
			{method: http.MethodDelete, target: "/login", want: Miss},
			{target: "/account", want: Miss, wantBody: "response 4"},
			{target: "/?q=1", want: Hit, wantBody: "response 2"},
		},
	}, {
		name:   "not on error",
		origin: origin,
		steps: []step{
			{target: "/fail", want: Miss},
			{method: http.MethodPost, target: "/fail", want: Miss, wantCode: http.StatusForbidden},
			{target: "/fail", want: Hit, wantBody: "response 1"},
		},
	}})
}

func TestQueryAndHostAreKeyed(t *testing.T) {
	t.Parallel()
	c := &Cache{Origin: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, r.Host+r.URL.RequestURI())
	})}
	for i, target := range []string{"http://a.example/p?x=1", "http://a.example/p?x=2", "http://b.example/p?x=1", "http://A.EXAMPLE/p?x=1"} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		want := Miss
		if i == 3 {
			want = Hit
		}
		if got := rec.Header().Get(StatusHeader); got != want {
			t.Errorf("%s: %s = %q, want %q", target, StatusHeader, got, want)
		}
	}
}

// TestConcurrent runs requests in parallel, for the race detector.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := &Cache{Origin: ok("Cache-Control: max-age=60", "Vary: Cookie", "Set-Cookie: sid={n}").handler()}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", "sid="+strconv.Itoa(i%5))
			c.ServeHTTP(httptest.NewRecorder(), r)
		}()
	}
	wg.Wait()
	hits, misses, stores := c.Stats()
	if hits+misses != 50 || stores != misses || misses < 5 {
		t.Errorf("Stats() = %d, %d, %d", hits, misses, stores)
	}
}

// handler adapts an originFunc outside runCacheTests (calls counted, real
// time).
func (f originFunc) handler() http.Handler {
	var mu sync.Mutex
	n := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		f(i, time.Now(), w, r)
	})
}
