package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store/redisstore"
)

// chromiumPath is Debian's chromium package.
const chromiumPath = "/usr/bin/chromium"

// screenshotPath is where the browser test saves the cart page, and
// sessionsShotPath the "Your sessions" page; the READMEs show them.
const (
	screenshotPath   = "screenshot.png"
	sessionsShotPath = "screenshot-sessions.png"
)

// stepTimeout bounds every browser action.
const stepTimeout = 30 * time.Second

// TestBrowser clicks through the shop in headless Chromium, as a customer
// would: add items, reload, log in, open a second browser, log out. It
// runs against the in-process store and, when GINSESSION_REDIS_URL is set,
// against Redis.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (%v): CI must run the browser test; install it with apt-get install -y chromium", chromiumPath, err)
		}
		t.Skipf("%s is missing: install Debian's chromium package (apt-get install -y chromium) to run the browser test", chromiumPath)
	}

	t.Run("memory", func(t *testing.T) {
		srv := startShop(t, serverConfig{})
		clickThrough(t, srv.URL, screenshotPath, sessionsShotPath)
	})

	t.Run("redis", func(t *testing.T) {
		url := os.Getenv("GINSESSION_REDIS_URL")
		if url == "" {
			t.Skip("GINSESSION_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/9): skipping the browser test against Redis")
		}
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("GINSESSION_REDIS_URL: %v", err)
		}
		client := redis.NewClient(opts)
		t.Cleanup(func() { client.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := client.Ping(ctx).Err(); err != nil {
			t.Fatalf("Redis at %s: %v", opts.Addr, err)
		}
		var b [6]byte
		rand.Read(b[:])
		prefix := "shop-e2e-" + hex.EncodeToString(b[:]) + ":"
		t.Cleanup(func() { deleteKeys(t, client, prefix) })

		srv := startShop(t, serverConfig{Store: redisstore.New(client), StoreName: "redis", KeyPrefix: prefix})
		clickThrough(t, srv.URL, "", "")

		// The saved cart lives in Redis under the user's name.
		n, err := client.Exists(context.Background(), prefix+"cart:alice").Result()
		if err != nil || n != 1 {
			t.Errorf("no saved cart under %scart:alice in Redis (%d, %v)", prefix, n, err)
		}
	})
}

// deleteKeys removes the keys this test wrote under prefix, and no others.
func deleteKeys(t *testing.T, client *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if err := client.Del(ctx, iter.Val()).Err(); err != nil {
			t.Errorf("deleting a test key: %v", err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scanning for test keys: %v", err)
	}
}

// clickThrough plays the customer's story against the shop at base. If
// shot is not empty, it saves a screenshot of the cart page there, and
// one of the sessions page at sessionsShot.
func clickThrough(t *testing.T, base, shot, sessionsShot string) {
	laptop := openBrowser(t, base)

	// Anonymous: add two mugs and a T-shirt from the catalogue.
	laptop.open("/")
	laptop.do("set the mug quantity to 2", chromedp.SetValue(chromedp.CSS("#product-mug input[name=qty]"), "2"))
	laptop.submit("add mugs", "#product-mug button")
	laptop.wantFlash("Added 2 × Gopher mug to your cart.")
	laptop.submit("add a T-shirt", "#product-tee button")
	laptop.wantFlash("Added 1 × Session T-shirt to your cart.")
	if got := laptop.text("#cart-count"); got != "3" {
		t.Errorf("the header counts %q items, want 3", got)
	}

	// Reload the cart page: the items are still there.
	laptop.open("/cart")
	laptop.do("reload the cart", chromedp.Reload())
	laptop.wantCart("mug=2 tee=1")

	// Change a quantity on the cart page.
	laptop.do("set the T-shirt quantity to 3", chromedp.SetValue(chromedp.CSS(`tr[data-product="tee"] input[name=qty]`), "3"))
	laptop.submit("update the T-shirts", `tr[data-product="tee"] button.secondary`)
	laptop.wantCart("mug=2 tee=3")
	if got := laptop.text("#total"); got != "$96.00" {
		t.Errorf("total %q, want $96.00", got)
	}

	// Log in, ticking "Remember me": the anonymous items are kept.
	laptop.login("alice", "wonderland", true)
	laptop.wantCart("mug=2 tee=3")
	if got := laptop.text("#greeting"); got != "Hello, Alice" {
		t.Errorf("greeting %q, want Hello, Alice", got)
	}
	laptop.wantFlash("Welcome, Alice! We kept the 5 items you picked before logging in: your cart now holds 5.")
	laptop.screenshot(shot, chromedp.CaptureScreenshot())

	// A second, separate browser: empty until it logs in as Alice.
	phone := openBrowser(t, base)
	phone.open("/cart")
	phone.wantCart("")
	phone.login("alice", "wonderland", false)
	phone.wantCart("mug=2 tee=3")

	// What the phone adds shows up on the laptop.
	phone.open("/")
	phone.submit("add socks", "#product-socks button")
	laptop.open("/cart")
	laptop.wantCart("mug=2 socks=1 tee=3")

	// A program logs in through the JSON API too.
	api := &apiClient{t: t, base: base, client: &http.Client{Timeout: stepTimeout}, ua: "curl/8.5.0"}
	token := api.login("alice", "wonderland")

	// "Your sessions" on the laptop lists all three, itself first.
	laptop.submit("open Your sessions", "#nav-sessions")
	laptop.wantDevices("this device", "other", "other")
	if got := laptop.text("tr.device.current .name"); !strings.HasPrefix(got, "Headless Chrome ") || !strings.HasSuffix(got, " on Linux") {
		t.Errorf("the laptop is listed as %q, want Headless Chrome … on Linux", got)
	}
	if got := laptop.eval(`[...document.querySelectorAll('tr.device .name')].map(e => e.textContent).join(', ')`); !strings.Contains(got, "curl 8.5.0") {
		t.Errorf("the devices are %q: the API client is missing", got)
	}
	// Only the header, the table and its button: the README needs no more.
	laptop.screenshot(sessionsShot, chromedp.Screenshot(chromedp.CSSAll("header.top, #sessions, #end-others")))

	// The laptop logs the phone out ...
	laptop.submit("log the phone out", `tr.device:not(.current):not(:has([title^="curl/"])) button.end-session`)
	laptop.wantFlash("Logged out of Headless Chrome ")
	laptop.wantDevices("this device", "other")

	// ... and the phone finds itself logged out on its next page load.
	phone.open("/cart")
	if got := phone.text("#login-link"); got != "Log in" {
		t.Errorf("after being logged out from the laptop the phone shows %q, want a Log in link", got)
	}
	phone.wantCart("")

	// "Log out everywhere else" ends the API client's session: its token
	// is dead.
	laptop.submit("log out everywhere else", "#end-others")
	laptop.wantFlash("Logged out of 1 other session.")
	laptop.wantDevices("this device")
	if r := api.call(http.MethodGet, "/api/cart", token, ""); r.status != http.StatusUnauthorized {
		t.Errorf("the API token after 'Log out everywhere else': %d, want 401", r.status)
	}

	// Logging out shows an empty cart.
	phone.login("alice", "wonderland", false)
	phone.wantCart("mug=2 socks=1 tee=3")
	phone.submit("log out", "#logout")
	phone.wantFlash("You are logged out. Your cart is saved for the next time you log in.")
	if got := phone.text("#login-link"); got != "Log in" {
		t.Errorf("after logout the header shows %q, want a Log in link", got)
	}
	phone.open("/cart")
	phone.wantCart("")
	laptop.submit("log out", "#logout")
	laptop.open("/cart")
	laptop.wantCart("")
}

// A tab is one browser window, with its own profile and cookies.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// openBrowser starts a separate Chromium, with a fresh profile, that the
// test closes when it ends.
func openBrowser(t *testing.T, base string) *tab {
	t.Helper()
	profile := t.TempDir() // removed after the browser has exited (cleanups run last-in first-out)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1200, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for Chromium to exit
	})

	// The first action starts the browser, whose life is bound to the
	// context of that call: use ctx itself, and bound the wait here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", chromiumPath, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within 60s", chromiumPath)
	}
	return &tab{t: t, ctx: ctx, base: base}
}

// timeout returns a context for one browser action.
func (b *tab) timeout() context.Context {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	b.t.Cleanup(cancel)
	return ctx
}

// do runs actions that do not leave the page.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.timeout(), actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open loads a page of the shop and expects 200.
func (b *tab) open(path string) {
	b.t.Helper()
	resp, err := chromedp.Run(b.timeout(), chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	if resp.Status != http.StatusOK {
		b.t.Fatalf("open %s: status %d", path, resp.Status)
	}
}

// submit clicks a form's button and waits for the page the shop redirects
// to, which must load with 200.
func (b *tab) submit(what, button string) {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.timeout(), chromedp.Click(chromedp.CSS(button)))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp.Status != http.StatusOK {
		b.t.Fatalf("%s: the page after it has status %d (%s)", what, resp.Status, b.eval(`[...document.querySelectorAll('.flash')].map(e => e.textContent).join(' | ')`))
	}
}

// login fills in and sends the login form, ticking "Remember me" if
// remember.
func (b *tab) login(user, password string, remember bool) {
	b.t.Helper()
	b.open("/login")
	b.do("fill in the login form",
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password))
	if remember {
		b.do("tick Remember me", chromedp.Click(chromedp.ID("remember")))
	}
	b.submit("log in as "+user, "#login-submit")
	if loc, err := chromedp.Run(b.timeout(), chromedp.Location()); err != nil || !strings.HasSuffix(loc, "/cart") {
		b.t.Fatalf("after login the browser is at %q (%v), want the cart", loc, err)
	}
}

// eval evaluates a JavaScript expression that yields a string.
func (b *tab) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.timeout(), chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return s
}

// text returns the text of the element matching sel, or "" if there is none.
func (b *tab) text(sel string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`document.querySelector(%q)?.textContent.trim() ?? ""`, sel))
}

// wantFlash expects msg among the page's flash messages.
func (b *tab) wantFlash(msg string) {
	b.t.Helper()
	got := b.eval(`[...document.querySelectorAll('.flash')].map(e => e.textContent).join(' | ')`)
	if !strings.Contains(got, msg) {
		b.t.Errorf("flash messages %q, want %q", got, msg)
	}
}

// wantCart expects the current cart page to show the lines in want
// ("mug=2 tee=1", sorted by product ID; "" for an empty cart).
func (b *tab) wantCart(want string) {
	b.t.Helper()
	got := b.eval(`[...document.querySelectorAll('tr.line')]
		.map(r => r.dataset.product + '=' + r.querySelector('input[name=qty]').value)
		.sort().join(' ')`)
	if got != want {
		b.t.Errorf("the cart page shows %q, want %q", got, want)
	}
	if want == "" && b.eval(`document.querySelector('#cart-empty') ? 'yes' : ''`) != "yes" {
		b.t.Error("the empty cart page does not say the cart is empty")
	}
}

// wantDevices expects the sessions page to list these rows, in order:
// "this device" for the browser's own, "other" for any other.
func (b *tab) wantDevices(want ...string) {
	b.t.Helper()
	got := b.eval(`[...document.querySelectorAll('tr.device')]
		.map(r => r.classList.contains('current') ? 'this device' : 'other').join(', ')`)
	if w := strings.Join(want, ", "); got != w {
		b.t.Errorf("the sessions page lists %q, want %q", got, w)
	}
}

// screenshot saves what capture takes, a PNG, at path, unless path is "".
func (b *tab) screenshot(path string, capture chromedp.Action[[]byte]) {
	b.t.Helper()
	if path == "" {
		return
	}
	png, err := chromedp.Run(b.timeout(), capture)
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
