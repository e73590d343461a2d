package main

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// A visitor who only looks, or whose form post is refused, costs the store
// nothing: 400 such requests, with and without cookies, save nothing and
// leave no entry behind.
func TestAnonymousBrowsingStoresNothing(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})

	// Visitors that keep cookies, as browsers do, and one that never
	// does, as crawlers and scripts often don't.
	visitors := []*browser{newBrowser(t, srv), newBrowser(t, srv), newBrowser(t, srv)}
	stranger := newBrowser(t, srv)
	stranger.client.Jar = nil
	visitors = append(visitors, stranger)
	// A token of the right length that the shop never issued.
	forged := func(*browser) string { return strings.Repeat("A", len(visitors[0].csrf)) }

	type request struct {
		method, path string
		form         url.Values // for POST; nil sends no csrf field
		token        func(v *browser) string
		json         string // for POST to the API: the JSON body
		want         int
	}
	other := func(v *browser) string { // another visitor's token
		if v == visitors[0] {
			return visitors[1].csrf
		}
		return visitors[0].csrf
	}
	requests := []request{
		{method: http.MethodGet, path: "/", want: http.StatusOK},
		{method: http.MethodGet, path: "/cart", want: http.StatusOK},
		{method: http.MethodGet, path: "/login", want: http.StatusOK},
		{method: http.MethodGet, path: "/session", want: http.StatusOK},
		{method: http.MethodGet, path: "/?product=mug", want: http.StatusOK},
		{method: http.MethodHead, path: "/", want: http.StatusNotFound}, // the shop routes GET only
		{method: http.MethodHead, path: "/static/style.css", want: http.StatusOK},
		{method: http.MethodGet, path: "/static/style.css", want: http.StatusOK},
		{method: http.MethodGet, path: "/static/missing.css", want: http.StatusNotFound},
		{method: http.MethodGet, path: "/products/mug", want: http.StatusNotFound},
		{method: http.MethodGet, path: "/cart/add", want: http.StatusNotFound},
		{method: http.MethodPost, path: "/nope", form: url.Values{}, want: http.StatusNotFound},
		{method: http.MethodPost, path: "/cart/add", form: url.Values{"product": {"mug"}, "qty": {"1"}}, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/cart/add", form: url.Values{"product": {"mug"}, "qty": {"1"}},
			token: forged, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/cart/add", form: url.Values{"product": {"mug"}, "qty": {"1"}},
			token: other, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/cart/empty", form: url.Values{},
			token: func(*browser) string { return "" }, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/login", form: url.Values{"user": {"alice"}, "password": {"wonderland"}},
			token: other, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/logout", form: url.Values{}, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/cart/update", form: url.Values{"product": {"mug"}, "qty": {"2"}},
			token: func(v *browser) string { return v.csrf + "x" }, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/cart/remove", form: url.Values{"product": {"mug"}},
			token: forged, want: http.StatusForbidden},
		{method: http.MethodGet, path: "/account/sessions", want: http.StatusOK},
		{method: http.MethodPost, path: "/account/sessions/end", form: url.Values{"handle": {"x"}}, want: http.StatusForbidden},
		{method: http.MethodPost, path: "/account/sessions/end", form: url.Values{"handle": {"x"}},
			token: func(v *browser) string { return v.csrf }, want: http.StatusForbidden}, // not logged in
		{method: http.MethodPost, path: "/account/sessions/end-others", form: url.Values{},
			token: other, want: http.StatusForbidden},
		// The API: no token, no session, nothing stored.
		{method: http.MethodGet, path: "/api/cart", want: http.StatusUnauthorized},
		{method: http.MethodGet, path: "/api/nope", want: http.StatusNotFound},
		{method: http.MethodPost, path: "/api/cart", json: `{"product": "mug"}`, want: http.StatusUnauthorized},
		{method: http.MethodPost, path: "/api/login", json: `{"user": "alice", "password": "nope"}`, want: http.StatusUnauthorized},
		{method: http.MethodPost, path: "/api/login", json: `alice`, want: http.StatusBadRequest},
		{method: http.MethodPost, path: "/api/logout", json: `{}`, want: http.StatusNoContent},
	}

	const total = 400
	for i := range total {
		// Each visitor sends each request in turn, the first a GET /.
		v := visitors[i%len(visitors)]
		rq := requests[i/len(visitors)%len(requests)]
		var r response
		switch {
		case rq.json != "":
			req, err := http.NewRequest(rq.method, v.base+rq.path, strings.NewReader(rq.json))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			r = v.do(req)
		case rq.method == http.MethodPost && rq.token == nil:
			r = v.postRaw(rq.path, rq.form.Encode())
		case rq.method == http.MethodPost:
			form := url.Values{"csrf": {rq.token(v)}}
			for k, vals := range rq.form {
				form[k] = vals
			}
			r = v.postRaw(rq.path, form.Encode())
		default:
			req, err := http.NewRequest(rq.method, v.base+rq.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			r = v.do(req)
		}
		if r.status != rq.want {
			t.Errorf("request %d, %s %s: status %d, want %d", i, rq.method, rq.path, r.status, rq.want)
		}
		for _, line := range r.header.Values("Set-Cookie") {
			if strings.HasPrefix(line, "session=") {
				t.Errorf("request %d, %s %s sets a session cookie: %q", i, rq.method, rq.path, line)
			}
		}
	}

	saves, entries := st.saves.Load(), st.entries(t)
	t.Logf("%d anonymous requests: %d store writes, %d entries", total, saves, len(entries))
	if saves != 0 || len(entries) != 0 {
		t.Errorf("%d anonymous requests made %d store writes and left %d entries, want 0 and 0 (first: %q)",
			total, saves, len(entries), entries[:min(3, len(entries))])
	}
	for _, v := range visitors[:len(visitors)-1] {
		if v.sessionCookie() != "" {
			t.Errorf("a visitor who only looked holds a session cookie")
		}
	}
}

// The first change a visitor makes creates the session: a first-time
// visitor's form post with the token from the page just works.
func TestFirstChangeCreatesTheSession(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})

	b := newBrowser(t, srv)
	b.get("/")
	if b.csrf == "" || b.csrfCookie() != b.csrf {
		t.Fatalf("the page's token %q and the CSRF cookie %q differ", b.csrf, b.csrfCookie())
	}
	if n, e := st.saves.Load(), st.entries(t); n != 0 || len(e) != 0 || b.sessionCookie() != "" {
		t.Fatalf("the first page view made %d store writes, left %d entries and a session cookie %q", n, len(e), b.sessionCookie())
	}
	b.add("mug", 2)
	if b.sessionCookie() == "" {
		t.Fatal("adding to the cart set no session cookie")
	}
	if e := st.entries(t); len(e) != 1 || e[0] != "shop:session:"+b.sessionCookie() {
		t.Errorf("after the first add the store holds %q, want this browser's session", e)
	}
	if got := b.cart().String(); got != "mug=2" {
		t.Errorf("cart = %s, want mug=2", got)
	}

	// Logging in is a first change too.
	fresh := newBrowser(t, srv)
	fresh.get("/login")
	fresh.mustPost("/login", url.Values{"user": {"bob"}, "password": {"builder"}}, "/cart")
	if !strings.Contains(fresh.get("/").body, "Hello, Bob") {
		t.Error("a first-time visitor could not log in")
	}
}

// Login and logout give the browser a new token: the one from before no
// longer passes, and the new one does.
func TestLoginAndLogoutRotateTheToken(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	anon := b.csrf
	b.get("/login")
	r := b.post("/login", url.Values{"user": {"alice"}, "password": {"wonderland"}})
	if r.status != http.StatusSeeOther || !slices.ContainsFunc(r.header.Values("Set-Cookie"), func(l string) bool { return strings.HasPrefix(l, "csrf=") }) ||
		!strings.Contains(r.header.Get("Cache-Control"), "no-store") {
		t.Fatalf("login: status %d, Set-Cookie %q, Cache-Control %q; want 303 with a new CSRF cookie, no-store",
			r.status, r.header.Values("Set-Cookie"), r.header.Get("Cache-Control"))
	}
	b.get("/cart")
	alice := b.csrf
	if alice == anon || b.csrfCookie() != alice {
		t.Fatalf("after login the page carries %q and the cookie is %q; before it was %q", alice, b.csrfCookie(), anon)
	}
	form := url.Values{"product": {"mug"}, "qty": {"1"}}
	form.Set("csrf", anon)
	if r := b.post("/cart/add", form); r.status != http.StatusForbidden {
		t.Errorf("the token from before login: status %d, want 403", r.status)
	}
	b.add("mug", 1) // the current token
	b.get("/")
	b.mustPost("/logout", nil, "/")
	b.get("/")
	if b.csrf == alice || b.csrfCookie() != b.csrf {
		t.Fatalf("after logout the page carries %q and the cookie is %q; logged in it was %q", b.csrf, b.csrfCookie(), alice)
	}
	// Alice's token and cookie together, replayed after logout, pass no
	// more: they were issued to her, and nobody is logged in now.
	b.setCSRFCookie(alice)
	form.Set("csrf", alice)
	if r := b.post("/cart/add", form); r.status != http.StatusForbidden {
		t.Errorf("Alice's token after logout: status %d, want 403", r.status)
	}
	if got := b.cart(); len(got) != 0 {
		t.Errorf("cart = %s, want empty", got)
	}
}

// Every response that carries a CSRF cookie is kept out of caches, and the
// cookie's attributes are the ones the shop means.
func TestCSRFCookieIsNeverCached(t *testing.T) {
	srv := startShop(t, serverConfig{})
	for _, rq := range []struct{ method, path, body string }{
		{http.MethodGet, "/", ""},
		{http.MethodGet, "/cart", ""},
		{http.MethodGet, "/login", ""},
		{http.MethodGet, "/session", ""},
		{http.MethodHead, "/", ""},
		{http.MethodGet, "/nope", ""},
		{http.MethodPost, "/cart/add", "product=mug&qty=1"},
	} {
		req, err := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "csrf" {
				ck = c
			}
		}
		what := rq.method + " " + rq.path
		if ck == nil {
			t.Errorf("%s (%d) sets no CSRF cookie", what, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "no-store") {
			t.Errorf("%s sets a CSRF cookie with Cache-Control %q, want no-store", what, got)
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.Secure ||
			ck.MaxAge != int(csrfLifetime.Seconds()) || len(ck.Value) != csrfTokenLen {
			t.Errorf("%s: CSRF cookie %q", what, resp.Header.Values("Set-Cookie"))
		}
	}
}

// Over HTTPS the cookie is a Secure __Host- cookie, and forms work with it.
func TestCSRFCookieOverHTTPS(t *testing.T) {
	h, err := newServer(serverConfig{BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler), Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv)
	b.client.Transport = srv.Client().Transport

	r := b.get("/")
	sc := r.header.Values("Set-Cookie")
	if len(sc) != 1 || !strings.HasPrefix(sc[0], "__Host-csrf="+b.csrf+";") || !strings.Contains(sc[0], "; Secure") ||
		!strings.Contains(sc[0], "; Path=/") || strings.Contains(sc[0], "Domain") {
		t.Fatalf("Set-Cookie %q, want one Secure __Host-csrf cookie for Path=/ without Domain", sc)
	}
	b.add("mug", 1)
	u, _ := url.Parse(srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "csrf" {
			t.Error("a plain csrf cookie was set over HTTPS")
		}
	}
	if got := b.cart().String(); got != "mug=1" {
		t.Errorf("cart = %s, want mug=1", got)
	}
	// The session cookie is Secure too.
	r = b.get("/session")
	if r.status != http.StatusOK {
		t.Fatalf("GET /session: %d", r.status)
	}
	b.mustPost("/logout", nil, "/")
}

// A token passes only for the user it was issued to, under the key that
// signed it, unaltered and unexpired.
func TestCSRFTokens(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	g, err := newCSRFGuard(secret, false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	g.now = func() time.Time { return now }

	tok := g.issue("alice")
	if len(tok) != csrfTokenLen || !g.valid(tok, "alice") {
		t.Fatalf("a fresh token %q does not pass", tok)
	}
	if other := g.issue("alice"); other == tok {
		t.Error("two tokens for one user are equal")
	}
	same, _ := newCSRFGuard(secret, true) // another instance with the same secret
	same.now = g.now
	if !same.valid(tok, "alice") {
		t.Error("an instance with the same secret refuses the token")
	}
	random, _ := newCSRFGuard(nil, false)
	random.now = g.now
	if random.valid(tok, "alice") || random.valid(random.issue(""), "") == false {
		t.Error("a guard with a random key accepts another's token, or refuses its own")
	}
	if _, err := newCSRFGuard(secret[:31], false); !errors.Is(err, errShortSecret) {
		t.Errorf("a 31-byte secret: %v, want errShortSecret", err)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := func(i int) string {
		b := slices.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	refused := map[string]struct {
		tok, user string
		at        time.Time
	}{
		"another user":                         {tok, "bob", now},
		"nobody":                               {tok, "", now},
		"a user name that merely starts alike": {tok, "alic", now},
		"issue time changed":                   {flipped(7), "alice", now},
		"random part changed":                  {flipped(20), "alice", now},
		"signature changed":                    {flipped(len(raw) - 1), "alice", now},
		"truncated":                            {tok[:len(tok)-1], "alice", now},
		"extended":                             {tok + "A", "alice", now},
		"not base64":                           {strings.Repeat("!", csrfTokenLen), "alice", now},
		"empty":                                {"", "alice", now},
		"expired":                              {tok, "alice", now.Add(csrfLifetime)},
		"issued in the future":                 {tok, "alice", now.Add(-2 * time.Minute)},
	}
	for name, tc := range refused {
		g.now = func() time.Time { return tc.at }
		if g.valid(tc.tok, tc.user) {
			t.Errorf("%s: the token passes", name)
		}
	}
	g.now = func() time.Time { return now.Add(csrfLifetime - time.Second) }
	if !g.valid(tok, "alice") {
		t.Error("a token a second before it expires is refused")
	}
}
