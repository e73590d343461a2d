package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store/nullstore"
)

// An apiClient is a program using the shop's JSON API with a plain
// net/http client: no cookie jar, and the token only where the test puts it.
type apiClient struct {
	t      *testing.T
	base   string
	client *http.Client
	ua     string // User-Agent; "" sends Go's
}

func newAPIClient(t *testing.T, srv *httptest.Server) *apiClient {
	return &apiClient{t: t, base: srv.URL, client: &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// An apiResponse is what the API answered.
type apiResponse struct {
	status int
	header http.Header
	body   string
}

// token returns the token in the response's Authorization header, and
// whether the header is there at all (empty: drop the token).
func (r apiResponse) token() (string, bool) {
	v, ok := r.header["Authorization"]
	if !ok || len(v) != 1 {
		return "", ok
	}
	return strings.TrimPrefix(v[0], "Bearer "), true
}

// errorText returns the "error" of a JSON error body.
func (r apiResponse) errorText(t *testing.T) string {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
		t.Errorf("status %d with a body that is no JSON error: %q (%v)", r.status, r.body, err)
	}
	return e.Error
}

// send sends req, with the client's User-Agent.
func (a *apiClient) send(req *http.Request) apiResponse {
	a.t.Helper()
	if a.ua != "" {
		req.Header.Set("User-Agent", a.ua)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	r := apiResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
		a.t.Errorf("%s %s sets a cookie: %q", req.Method, req.URL.Path, sc)
	}
	return r
}

// call sends a request with token (if not "") as Authorization: Bearer,
// and body (if not "") as JSON.
func (a *apiClient) call(method, path, token, body string) apiResponse {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return a.send(req)
}

// login logs in and returns the token.
func (a *apiClient) login(user, password string) string {
	a.t.Helper()
	body, _ := json.Marshal(apiCredentials{User: user, Password: password})
	r := a.call(http.MethodPost, "/api/login", "", string(body))
	token, _ := r.token()
	if r.status != http.StatusOK || token == "" {
		a.t.Fatalf("POST /api/login as %s: %d, Authorization %q, body %s", user, r.status, r.header.Get("Authorization"), r.body)
	}
	return token
}

// cart reads the cart with token, and expects 200.
func (a *apiClient) cart(token string) apiCartBody {
	a.t.Helper()
	r := a.call(http.MethodGet, "/api/cart", token, "")
	if r.status != http.StatusOK {
		a.t.Fatalf("GET /api/cart: %d %s", r.status, r.body)
	}
	return decodeCart(a.t, r)
}

func decodeCart(t *testing.T, r apiResponse) apiCartBody {
	t.Helper()
	var c apiCartBody
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatalf("a cart that is not JSON: %q: %v", r.body, err)
	}
	return c
}

// cartString is a JSON cart in Cart.String's form ("mug=2 tee=1").
func cartString(c apiCartBody) string {
	cart := Cart{}
	for _, l := range c.Items {
		cart[l.Product] = l.Qty
	}
	return cart.String()
}

// The API's story: log in, add twice, read the cart, log out; the token is
// dead afterwards.
func TestAPI(t *testing.T) {
	srv := startShop(t, serverConfig{})
	api := newAPIClient(t, srv)

	r := api.call(http.MethodPost, "/api/login", "", `{"user": "alice", "password": "wonderland"}`)
	token, _ := r.token()
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Authorization"), "Bearer ") || len(token) < 40 {
		t.Fatalf("login: %d, Authorization %q", r.status, r.header.Get("Authorization"))
	}
	if r.body != `{"name":"Alice","user":"alice"}` {
		t.Errorf("login body %s", r.body)
	}
	if strings.Contains(r.body, token) {
		t.Error("the token is in the body: it belongs in the header only")
	}
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") && !strings.Contains(cc, "private") {
		t.Errorf("the response carrying a token may be cached: Cache-Control %q", cc)
	}
	if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Authorization") {
		t.Errorf("Vary %q lacks Authorization", r.header.Values("Vary"))
	}

	r = api.call(http.MethodPost, "/api/cart", token, `{"product": "mug"}`)
	if r.status != http.StatusOK || cartString(decodeCart(t, r)) != "mug=1" {
		t.Fatalf("first add: %d %s", r.status, r.body)
	}
	if _, sent := r.token(); sent {
		t.Errorf("a request with a live token got an Authorization header back: %q", r.header.Get("Authorization"))
	}
	r = api.call(http.MethodPost, "/api/cart", token, `{"product": "mug", "qty": 2}`)
	if r.status != http.StatusOK || cartString(decodeCart(t, r)) != "mug=3" {
		t.Fatalf("second add: %d %s", r.status, r.body)
	}

	cart := api.cart(token)
	want := apiCartBody{Items: []apiLine{{Product: "mug", Name: "Gopher mug", Qty: 3, Price: 1200, Total: 3600}}, Count: 3, Total: 3600}
	if len(cart.Items) != 1 || cart.Items[0] != want.Items[0] || cart.Count != want.Count || cart.Total != want.Total {
		t.Errorf("cart %+v, want %+v", cart, want)
	}
	// It is Alice's saved cart: the shop's pages show it too.
	b := newBrowser(t, srv)
	b.login("alice", "wonderland")
	if got := b.cart().String(); got != "mug=3" {
		t.Errorf("the browser shows %s, want mug=3", got)
	}
	b.add("socks", 1)
	if got := cartString(api.cart(token)); got != "mug=3 socks=1" {
		t.Errorf("the API shows %s after the browser added socks", got)
	}

	r = api.call(http.MethodPost, "/api/logout", token, "")
	if got, sent := r.token(); r.status != http.StatusNoContent || !sent || got != "" {
		t.Errorf("logout: %d, Authorization %q (sent %v), want 204 with an empty header", r.status, got, sent)
	}
	for _, rq := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/cart", ""},
		{http.MethodPost, "/api/cart", `{"product": "mug"}`},
	} {
		r := api.call(rq.method, rq.path, token, rq.body)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != apiRealm {
			t.Errorf("%s %s after logout: %d, WWW-Authenticate %q; want 401", rq.method, rq.path, r.status, r.header.Get("WWW-Authenticate"))
		}
		if msg := r.errorText(t); !strings.Contains(msg, "Authorization: Bearer <token>") {
			t.Errorf("the 401 does not say how to authenticate: %q", msg)
		}
	}
	if got := b.cart().String(); got != "mug=3 socks=1" {
		t.Errorf("after the API logged out the cart is %s", got)
	}
	// Logging out again, or with no token at all, is harmless.
	for _, tok := range []string{token, ""} {
		if r := api.call(http.MethodPost, "/api/logout", tok, ""); r.status != http.StatusNoContent {
			t.Errorf("logout with token %q: %d", tok, r.status)
		}
	}
	if again := api.login("alice", "wonderland"); again == token {
		t.Error("a new login got the old token")
	}
}

func TestAPILoginRejectsBadRequests(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})
	api := newAPIClient(t, srv)
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"user": "alice", "password": "nope"}`, http.StatusUnauthorized},
		{`{"user": "mallory", "password": "wonderland"}`, http.StatusUnauthorized},
		{`{"user": "alice"}`, http.StatusBadRequest},
		{`{"password": "wonderland"}`, http.StatusBadRequest},
		{`{}`, http.StatusBadRequest},
		{``, http.StatusBadRequest},
		{`user=alice&password=wonderland`, http.StatusBadRequest},
		{`{"user": "alice", "password": "wonderland", "admin": true}`, http.StatusBadRequest},
		{`{"user": "alice", "password": "wonderland"} {}`, http.StatusBadRequest},
		{`["alice", "wonderland"]`, http.StatusBadRequest},
		{`{"user": "alice", "password": "` + strings.Repeat("x", maxFormBytes) + `"}`, http.StatusBadRequest},
	} {
		r := api.call(http.MethodPost, "/api/login", "", tc.body)
		if r.status != tc.want {
			t.Errorf("login with %.60q: %d, want %d", tc.body, r.status, tc.want)
		}
		r.errorText(t)
		if _, sent := r.token(); sent {
			t.Errorf("login with %.60q sent an Authorization header", tc.body)
		}
	}
	if n := st.saves.Load(); n != 0 {
		t.Errorf("refused logins made %d store writes", n)
	}
}

func TestAPIRejectsBadItems(t *testing.T) {
	srv := startShop(t, serverConfig{})
	api := newAPIClient(t, srv)
	token := api.login("bob", "builder")
	if r := api.call(http.MethodPost, "/api/cart", token, `{"product": "socks", "qty": 98}`); r.status != http.StatusOK {
		t.Fatalf("adding 98 socks: %d %s", r.status, r.body)
	}
	for _, body := range []string{
		`{"product": "socks", "qty": 2}`, // 100 socks
		`{"product": "yacht"}`,
		`{"product": ""}`,
		`{"qty": 1}`,
		`{"product": "mug", "qty": 0}`,
		`{"product": "mug", "qty": -1}`,
		`{"product": "mug", "qty": 100}`,
		`{"product": "mug", "qty": 99999999999999999999}`,
		`{"product": "mug", "qty": "2"}`,
		`{"product": "mug", "qty": 1.5}`,
		`{"product": "mug", "price": 1}`,
		`not json`,
	} {
		r := api.call(http.MethodPost, "/api/cart", token, body)
		if r.status != http.StatusBadRequest {
			t.Errorf("POST /api/cart %s: %d, want 400", body, r.status)
		}
		r.errorText(t)
	}
	if got := cartString(api.cart(token)); got != "socks=98" {
		t.Errorf("cart %s, want socks=98", got)
	}
	if r := api.call(http.MethodPost, "/api/cart", token, `{"product": "socks", "qty": 1}`); r.status != http.StatusOK {
		t.Errorf("the 99th pair: %d", r.status)
	}
}

// A token is taken from the Authorization header only: never from the
// query string or a form, and not without "Bearer".
func TestAPITokenNeverFromTheQueryString(t *testing.T) {
	srv := startShop(t, serverConfig{})
	api := newAPIClient(t, srv)
	token := api.login("alice", "wonderland")
	api.call(http.MethodPost, "/api/cart", token, `{"product": "tee"}`)

	q := url.QueryEscape(token)
	for _, path := range []string{
		"/api/cart?token=" + q, "/api/cart?access_token=" + q, "/api/cart?session=" + q,
		"/api/cart?Authorization=" + url.QueryEscape("Bearer "+token), "/api/cart?authorization=" + q,
	} {
		if r := api.call(http.MethodGet, path, "", ""); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s: %d, want 401", strings.ReplaceAll(path, q, "TOKEN"), r.status)
		}
		if r := api.call(http.MethodPost, path, "", `{"product": "mug"}`); r.status != http.StatusUnauthorized {
			t.Errorf("POST %s: %d, want 401", strings.ReplaceAll(path, q, "TOKEN"), r.status)
		}
	}
	for name, header := range map[string][2]string{
		"the bare token":        {"Authorization", token},
		"another scheme":        {"Authorization", "Basic " + token},
		"another header":        {"X-Session", token},
		"a token header":        {"Token", token},
		"a tampered token":      {"Authorization", "Bearer " + token[:len(token)-1] + "A"},
		"two tokens":            {"Authorization", "Bearer " + token + " " + token},
		"the token in a cookie": {"Cookie", "session=" + token},
	} {
		req, _ := http.NewRequest(http.MethodGet, api.base+"/api/cart", nil)
		req.Header.Set(header[0], header[1])
		if r := api.send(req); r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, r.status)
		}
	}
	// Form bodies carry no token either.
	req, _ := http.NewRequest(http.MethodPost, api.base+"/api/cart", strings.NewReader("access_token="+q+"&product=mug"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := api.send(req); r.status != http.StatusUnauthorized {
		t.Errorf("a token in a form body: %d, want 401", r.status)
	}
	// The scheme is case-insensitive, as RFC 9110 says.
	req, _ = http.NewRequest(http.MethodGet, api.base+"/api/cart", nil)
	req.Header.Set("Authorization", "bearer "+token)
	if r := api.send(req); r.status != http.StatusOK {
		t.Errorf("'bearer' in lower case: %d, want 200", r.status)
	}
	if got := cartString(api.cart(token)); got != "tee=1" {
		t.Errorf("cart %s, want tee=1", got)
	}
}

// The API does not read cookies: a browser's session cookie opens nothing
// there, so a page on another site that makes the browser send a request
// to the API sends it anonymously. That is why the API needs no CSRF token.
func TestAPIIgnoresCookies(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.login("alice", "wonderland")
	b.add("notebook", 1)

	// The browser's own client, with its cookie jar.
	for _, rq := range []struct{ method, path, body, ctype string }{
		{http.MethodGet, "/api/cart", "", ""},
		{http.MethodPost, "/api/cart", `{"product": "hoodie"}`, "application/json"},
		{http.MethodPost, "/api/cart", `{"product": "hoodie"}`, "text/plain"}, // what a cross-site form can send
		{http.MethodPost, "/api/logout", "", ""},
	} {
		req, _ := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
		if rq.ctype != "" {
			req.Header.Set("Content-Type", rq.ctype)
		}
		r := b.do(req)
		want := http.StatusUnauthorized
		if rq.path == "/api/logout" {
			want = http.StatusNoContent // nothing to end
		}
		if r.status != want {
			t.Errorf("%s %s with the browser's cookie: %d, want %d", rq.method, rq.path, r.status, want)
		}
	}
	r := b.get("/cart")
	if !loggedIn(r.body) || cartOnPage(t, r.body).String() != "notebook=1" {
		t.Error("requests with the cookie changed the cart or logged the browser out")
	}

	// A cookie next to a valid token, as a same-origin script would send,
	// is fine: the token is what counts.
	api := newAPIClient(t, srv)
	token := api.login("bob", "builder")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/cart", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Cookie", "session="+b.sessionCookie())
	if r := api.send(req); r.status != http.StatusOK || cartString(decodeCart(t, r)) != "" {
		t.Errorf("Bob's token with Alice's cookie: %d %s, want Bob's empty cart", r.status, r.body)
	}
}

// An API client's session is listed on "Your sessions" as another device,
// and ending it there kills its token.
func TestAPISessionsAreListed(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.ua = firefoxOnWindows
	b.login("alice", "wonderland")
	api := newAPIClient(t, srv)
	api.ua = "curl/8.5.0"
	token := api.login("alice", "wonderland")

	list := b.sessions()
	if len(list) != 2 || list[0].device != "Firefox 128 on Windows" || list[1].device != "curl 8.5.0" || list[1].current || !list[1].button {
		t.Fatalf("the browser lists %+v, want itself and curl 8.5.0", list)
	}

	// Logging out through the API takes it off the list.
	api.call(http.MethodPost, "/api/logout", token, "")
	if got := b.sessions(); len(got) != 1 {
		t.Errorf("after the API logged out the browser lists %+v", got)
	}

	// Ended from the page, the token is dead; its next response tells the
	// client to drop it.
	token = api.login("alice", "wonderland")
	list = b.sessions()
	if len(list) != 2 {
		t.Fatalf("lists %+v", list)
	}
	if msgs := b.endSession(list[1].handle); len(msgs) != 1 || msgs[0] != "Logged out of curl 8.5.0." {
		t.Errorf("flash %q", msgs)
	}
	r := api.call(http.MethodGet, "/api/cart", token, "")
	if got, sent := r.token(); r.status != http.StatusUnauthorized || !sent || got != "" {
		t.Errorf("the ended token: %d, Authorization %q (sent %v); want 401 and an empty header", r.status, got, sent)
	}
	if r := api.call(http.MethodPost, "/api/cart", token, `{"product": "mug"}`); r.status != http.StatusUnauthorized {
		t.Errorf("adding with the ended token: %d", r.status)
	}
	if got := b.cart(); len(got) != 0 {
		t.Errorf("the ended token added to the cart: %s", got)
	}
}

func TestAPIStoreOutageIs503(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})
	api := newAPIClient(t, srv)
	token := api.login("alice", "wonderland")
	st.down.Store(true)
	for _, rq := range []struct{ method, path, token, body string }{
		{http.MethodGet, "/api/cart", token, ""},
		{http.MethodPost, "/api/cart", token, `{"product": "mug"}`},
		{http.MethodPost, "/api/login", "", `{"user": "alice", "password": "wonderland"}`},
	} {
		r := api.call(rq.method, rq.path, rq.token, rq.body)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errorText(t), "cannot reach") {
			t.Errorf("%s %s with the store down: %d %s", rq.method, rq.path, r.status, r.body)
		}
	}
	st.down.Store(false)
	if got := cartString(api.cart(token)); got != "" {
		t.Errorf("cart after the outage: %s", got)
	}
}

func TestAPINotFoundAndNullStore(t *testing.T) {
	srv := startShop(t, serverConfig{})
	api := newAPIClient(t, srv)
	for _, rq := range [][2]string{{http.MethodGet, "/api"}, {http.MethodGet, "/api/nope"}, {http.MethodGet, "/api/login"}, {http.MethodDelete, "/api/cart"}} {
		r := api.call(rq[0], rq[1], "", "")
		if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q, want a JSON 404", rq[0], rq[1], r.status, r.header.Get("Content-Type"))
		}
		r.errorText(t)
	}

	null := newAPIClient(t, startShop(t, serverConfig{Store: nullstore.New(), StoreName: "null"}))
	r := null.call(http.MethodPost, "/api/login", "", `{"user": "alice", "password": "wonderland"}`)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errorText(t), "switched off") {
		t.Errorf("login with -store null: %d %s", r.status, r.body)
	}
	if r := null.call(http.MethodGet, "/api/cart", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("GET /api/cart with -store null: %d, want 401", r.status)
	}
}
