package main

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// startShop serves the shop on a loopback port for the length of the
// test. cfg.Store nil means a fresh memstore.
func startShop(t *testing.T, cfg serverConfig) *httptest.Server {
	t.Helper()
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.MinCost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := newServer(cfg)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// A browser is one cookie jar talking to the shop. It does not follow
// redirects, so tests see the 303s, and it remembers the CSRF token of the
// last page it loaded, as a person's browser would.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
	ua     string // User-Agent; "" sends Go's
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: srv.URL, client: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// A response is what the shop answered.
type response struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	if b.ua != "" {
		req.Header.Set("User-Agent", b.ua)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if m := csrfField.FindStringSubmatch(r.body); m != nil {
		b.csrf = m[1]
	}
	return r
}

// get loads a page.
func (b *browser) get(path string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form with the browser's CSRF token added, unless form
// already has a "csrf" field.
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	form = maps.Clone(form)
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.postRaw(path, form.Encode())
}

// postRaw submits a urlencoded body as it is.
func (b *browser) postRaw(path, body string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// mustPost submits a form and expects 303 to wantLocation.
func (b *browser) mustPost(path string, form url.Values, wantLocation string) {
	b.t.Helper()
	r := b.post(path, form)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != wantLocation {
		b.t.Fatalf("POST %s %v: got %d to %q, want 303 to %q; page says %q",
			path, form, r.status, r.header.Get("Location"), wantLocation, pageMessages(r.body))
	}
}

// add puts n of product in the cart through the catalogue's form.
func (b *browser) add(productID string, n int) {
	b.t.Helper()
	b.mustPost("/cart/add", url.Values{"product": {productID}, "qty": {strconv.Itoa(n)}}, "/")
}

// login logs in, expects success and returns the cart page it leads to.
func (b *browser) login(user, password string) response {
	b.t.Helper()
	b.get("/login")
	b.mustPost("/login", url.Values{"user": {user}, "password": {password}}, "/cart")
	return b.get("/cart")
}

// cart reads the cart off the cart page.
func (b *browser) cart() Cart {
	b.t.Helper()
	r := b.get("/cart")
	if r.status != http.StatusOK {
		b.t.Fatalf("GET /cart: %d", r.status)
	}
	return cartOnPage(b.t, r.body)
}

var cartLine = regexp.MustCompile(`(?s)<tr class="line" data-product="([^"]+)">.*?name="qty" value="(\d+)"`)

// cartOnPage parses the cart table of a cart page.
func cartOnPage(t *testing.T, body string) Cart {
	t.Helper()
	cart := Cart{}
	for _, m := range cartLine.FindAllStringSubmatch(body, -1) {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatalf("quantity %q: %v", m[2], err)
		}
		cart[m[1]] = n
	}
	if len(cart) == 0 && !strings.Contains(body, `id="cart-empty"`) {
		t.Fatalf("the cart page shows neither lines nor an empty cart:\n%s", body)
	}
	return cart
}

var messageRE = regexp.MustCompile(`<p class="flash [a-z]+"[^>]*>([^<]*)</p>`)

// pageMessages returns the flash and error messages on a page.
func pageMessages(body string) []string {
	var out []string
	for _, m := range messageRE.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// sessionCookie returns the browser's session cookie value, or "".
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.base)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

// csrfCookie returns the browser's CSRF cookie value, or "".
func (b *browser) csrfCookie() string {
	u, _ := url.Parse(b.base)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "csrf" {
			return c.Value
		}
	}
	return ""
}

// setCSRFCookie makes the browser present the given CSRF cookie.
func (b *browser) setCSRFCookie(value string) {
	u, _ := url.Parse(b.base)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "csrf", Value: value, Path: "/"}})
}

// setSessionCookie makes the browser present the given session cookie.
func (b *browser) setSessionCookie(value string) {
	u, _ := url.Parse(b.base)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: value, Path: "/"}})
}

// countingStore counts the calls that reach a store, and can be made to
// fail them. It remembers every key it saved, so that entries can count
// what is stored.
type countingStore struct {
	store.Store
	calls atomic.Int64
	saves atomic.Int64
	down  atomic.Bool

	mu    sync.Mutex
	saved map[string]bool
}

var errDown = errors.New("store is down (test)")

func newCountingStore() *countingStore { return &countingStore{Store: memstore.New()} }

func (s *countingStore) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, 0, errDown
	}
	return s.Store.Load(ctx, key, ttl)
}

func (s *countingStore) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	s.calls.Add(1)
	s.saves.Add(1)
	if s.down.Load() {
		return 0, errDown
	}
	s.mu.Lock()
	if s.saved == nil {
		s.saved = map[string]bool{}
	}
	s.saved[key] = true
	s.mu.Unlock()
	return s.Store.Save(ctx, key, data, version, ttl)
}

// entries returns the keys that hold a live entry, without counting the
// look-ups as calls. Only Save creates entries, so these are all there are.
func (s *countingStore) entries(t *testing.T) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var live []string
	for key := range s.saved {
		_, _, err := s.Store.Load(context.Background(), key, 0)
		switch {
		case err == nil:
			live = append(live, key)
		case !errors.Is(err, store.ErrNotFound):
			t.Fatalf("loading %s: %v", key, err)
		}
	}
	slices.Sort(live)
	return live
}

func (s *countingStore) Delete(ctx context.Context, key string) error {
	s.calls.Add(1)
	if s.down.Load() {
		return errDown
	}
	return s.Store.Delete(ctx, key)
}
