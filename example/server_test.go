package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/nullstore"
)

func TestCataloguePage(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	r := b.get("/")
	if r.status != http.StatusOK {
		t.Fatalf("GET /: %d", r.status)
	}
	for _, p := range catalogue {
		if !strings.Contains(r.body, p.Name) || !strings.Contains(r.body, money(p.Price)) {
			t.Errorf("the catalogue does not show %s at %s", p.Name, money(p.Price))
		}
	}
	if b.csrf == "" {
		t.Error("the catalogue's forms carry no CSRF token")
	}
	if b.sessionCookie() != "" {
		t.Error("looking at the catalogue created a session")
	}
	if b.csrfCookie() != b.csrf {
		t.Errorf("the forms carry %q but the CSRF cookie is %q", b.csrf, b.csrfCookie())
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store: pages are per visitor", got)
	}
	if !strings.Contains(r.body, `<a class="button small" href="/login"`) && !strings.Contains(r.body, `href="/login"`) {
		t.Error("no login link for an anonymous visitor")
	}
}

func TestStylesheetDoesNotTouchTheSession(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("mug", 1) // now the browser has a session cookie
	if b.sessionCookie() == "" {
		t.Fatal("no session cookie after adding to the cart")
	}
	before := st.calls.Load()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.URL+"/static/style.css", nil)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
			t.Errorf("%s /static/style.css: %d %q", method, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("%s /static/style.css sets a cookie: %q", method, sc)
		}
	}
	if n := st.calls.Load() - before; n != 0 {
		t.Errorf("serving the stylesheet made %d store calls, want 0", n)
	}
}

func TestAddToCart(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("mug", 2)
	b.add("tee", 1)
	b.add("mug", 1)

	r := b.get("/")
	if got := pageMessages(r.body); len(got) != 3 || got[0] != "Added 2 × Gopher mug to your cart." {
		t.Errorf("flash messages after three adds: %q", got)
	}
	if got := pageMessages(b.get("/").body); len(got) != 0 {
		t.Errorf("flash messages are shown twice: %q", got)
	}
	if !strings.Contains(r.body, `id="cart-count">4<`) {
		t.Error("the header does not count 4 items")
	}

	r = b.get("/cart")
	if got := cartOnPage(t, r.body).String(); got != "mug=3 tee=1" {
		t.Fatalf("cart = %s, want mug=3 tee=1", got)
	}
	// 3 × $12.00 + 1 × $24.00
	if !strings.Contains(r.body, "$36.00") || !strings.Contains(r.body, `id="total">$60.00<`) {
		t.Errorf("the cart page lacks the line total $36.00 or the total $60.00:\n%s", r.body)
	}
}

func TestAddCapsAQuantity(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("socks", 98)
	r := b.post("/cart/add", url.Values{"product": {"socks"}, "qty": {"2"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "at most 99") {
		t.Fatalf("adding past 99: %d %q", r.status, pageMessages(r.body))
	}
	b.add("socks", 1)
	if got := b.cart().String(); got != "socks=99" {
		t.Errorf("cart = %s, want socks=99", got)
	}
}

func TestChangeRemoveAndEmpty(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("mug", 1)
	b.add("tee", 1)
	b.add("socks", 2)
	b.get("/cart")

	b.mustPost("/cart/update", url.Values{"product": {"mug"}, "qty": {"5"}}, "/cart")
	if got := b.cart().String(); got != "mug=5 socks=2 tee=1" {
		t.Fatalf("after changing mug to 5: %s", got)
	}
	b.mustPost("/cart/remove", url.Values{"product": {"tee"}}, "/cart")
	r := b.get("/cart")
	if got := cartOnPage(t, r.body).String(); got != "mug=5 socks=2" {
		t.Fatalf("after removing tee: %s", got)
	}
	if got := pageMessages(r.body); len(got) != 1 || got[0] != "Removed Session T-shirt from your cart." {
		t.Errorf("flash messages: %q", got)
	}
	b.mustPost("/cart/empty", nil, "/cart")
	r = b.get("/cart")
	if got := cartOnPage(t, r.body); len(got) != 0 {
		t.Fatalf("after emptying: %s", got)
	}
	if got := pageMessages(r.body); len(got) != 1 || got[0] != "Your cart is empty." {
		t.Errorf("flash messages: %q", got)
	}
}

func TestBadInputIs400AndChangesNothing(t *testing.T) {
	const absurd = "99999999999999999999999" // overflows int
	cases := []struct {
		name, path string
		form       url.Values
		want       string // part of the message on the page
	}{
		{"add unknown product", "/cart/add", url.Values{"product": {"unicorn"}, "qty": {"1"}}, `We don't sell "unicorn"`},
		{"add missing product", "/cart/add", url.Values{"qty": {"1"}}, "Which product?"},
		{"add empty product", "/cart/add", url.Values{"product": {""}, "qty": {"1"}}, "Which product?"},
		{"add missing qty", "/cart/add", url.Values{"product": {"mug"}}, "quantity is missing"},
		{"add zero", "/cart/add", url.Values{"product": {"mug"}, "qty": {"0"}}, "must be from 1 to 99; 0 is not"},
		{"add negative", "/cart/add", url.Values{"product": {"mug"}, "qty": {"-3"}}, "must be from 1 to 99; -3 is not"},
		{"add too many", "/cart/add", url.Values{"product": {"mug"}, "qty": {"100"}}, "must be from 1 to 99; 100 is not"},
		{"add absurd", "/cart/add", url.Values{"product": {"mug"}, "qty": {absurd}}, "must be from 1 to 99"},
		{"add not a number", "/cart/add", url.Values{"product": {"mug"}, "qty": {"lots"}}, `"lots" is not a quantity`},
		{"add fraction", "/cart/add", url.Values{"product": {"mug"}, "qty": {"1.5"}}, `"1.5" is not a quantity`},
		{"update unknown product", "/cart/update", url.Values{"product": {"unicorn"}, "qty": {"1"}}, `We don't sell "unicorn"`},
		{"update missing product", "/cart/update", url.Values{"qty": {"1"}}, "Which product?"},
		{"update missing qty", "/cart/update", url.Values{"product": {"mug"}}, "quantity is missing"},
		{"update zero", "/cart/update", url.Values{"product": {"mug"}, "qty": {"0"}}, "must be from 1 to 99; 0 is not"},
		{"update negative", "/cart/update", url.Values{"product": {"mug"}, "qty": {"-1"}}, "must be from 1 to 99; -1 is not"},
		{"update absurd", "/cart/update", url.Values{"product": {"mug"}, "qty": {"1000000"}}, "must be from 1 to 99; 1000000 is not"},
		{"update not a number", "/cart/update", url.Values{"product": {"mug"}, "qty": {"2x"}}, `"2x" is not a quantity`},
		{"remove unknown product", "/cart/remove", url.Values{"product": {"unicorn"}}, `We don't sell "unicorn"`},
		{"remove missing product", "/cart/remove", url.Values{}, "Which product?"},
		{"login missing password", "/login", url.Values{"user": {"alice"}}, "Enter a user name and a password."},
		{"login missing user", "/login", url.Values{"password": {"wonderland"}}, "Enter a user name and a password."},
	}
	for _, loggedIn := range []bool{false, true} {
		srv := startShop(t, serverConfig{})
		b := newBrowser(t, srv)
		b.get("/")
		if loggedIn {
			b.login("alice", "wonderland")
		}
		b.add("mug", 2)
		b.add("tee", 1)
		b.get("/")
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/loggedIn=%v", tc.name, loggedIn), func(t *testing.T) {
				b.t = t
				r := b.post(tc.path, tc.form)
				if r.status != http.StatusBadRequest {
					t.Errorf("status %d, want 400", r.status)
				}
				if msgs := pageMessages(r.body); len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1], tc.want) {
					t.Errorf("page messages %q, want one containing %q", msgs, tc.want)
				}
				if got := b.cart().String(); got != "mug=2 tee=1" {
					t.Errorf("cart changed to %s", got)
				}
				if loggedIn && !strings.Contains(b.get("/").body, "Hello, Alice") {
					t.Error("no longer logged in")
				}
			})
		}
	}
}

func TestOversizedFormIs400(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("mug", 1)
	body := url.Values{"csrf": {b.csrf}, "product": {"mug"}, "qty": {"1"}, "pad": {strings.Repeat("x", maxFormBytes)}}.Encode()
	if r := b.postRaw("/cart/add", body); r.status != http.StatusBadRequest {
		t.Errorf("a %d-byte form: status %d, want 400", len(body), r.status)
	}
	if got := b.cart().String(); got != "mug=1" {
		t.Errorf("cart = %s, want mug=1", got)
	}
}

// Every form post without this browser's CSRF token, signed for its
// visitor, is refused with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	forms := []struct {
		path string
		form url.Values
	}{
		{"/cart/add", url.Values{"product": {"socks"}, "qty": {"1"}}},
		{"/cart/update", url.Values{"product": {"mug"}, "qty": {"7"}}},
		{"/cart/remove", url.Values{"product": {"mug"}}},
		{"/cart/empty", url.Values{}},
		{"/login", url.Values{"user": {"bob"}, "password": {"builder"}}},
		{"/logout", url.Values{}},
	}
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.login("alice", "wonderland")
	b.add("mug", 2)
	b.get("/")
	other := newBrowser(t, srv)
	other.get("/")
	bob := newBrowser(t, srv)
	bob.login("bob", "builder")

	tokens := map[string]string{
		"missing":                 "",
		"wrong":                   strings.Repeat("A", len(b.csrf)),
		"another session's token": other.csrf,
		"truncated":               b.csrf[:len(b.csrf)-1],
	}
	for _, f := range forms {
		for name, tok := range tokens {
			t.Run(f.path+"/"+name, func(t *testing.T) {
				b.t = t
				form := url.Values{}
				for k, v := range f.form {
					form[k] = v
				}
				if name != "missing" {
					form.Set("csrf", tok)
				}
				var r response
				if name == "missing" {
					r = b.postRaw(f.path, form.Encode())
				} else {
					r = b.post(f.path, form)
				}
				if r.status != http.StatusForbidden {
					t.Errorf("status %d, want 403", r.status)
				}
				if !strings.Contains(r.body, "nothing was changed") {
					t.Errorf("the 403 page does not explain itself: %q", pageMessages(r.body))
				}
				page := b.get("/cart")
				if got := cartOnPage(t, page.body).String(); got != "mug=2" {
					t.Errorf("cart changed to %s", got)
				}
				if !strings.Contains(page.body, "Hello, Alice") {
					t.Error("the user was logged out or switched")
				}
			})
		}
		t.Run(f.path+"/no session", func(t *testing.T) {
			fresh := newBrowser(t, srv) // has never loaded a page
			if r := fresh.post(f.path, f.form); r.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", r.status)
			}
		})
		// An attacker who can plant a cookie in Alice's browser plants
		// a pair that passes for themselves: their token, and the
		// cookie that goes with it. It was not issued to Alice.
		for name, attacker := range map[string]*browser{"anonymous": other, "bob": bob} {
			t.Run(f.path+"/planted pair of "+name, func(t *testing.T) {
				b.t = t
				b.setCSRFCookie(attacker.csrfCookie())
				form := url.Values{"csrf": {attacker.csrf}}
				for k, v := range f.form {
					form[k] = v
				}
				if r := b.post(f.path, form); r.status != http.StatusForbidden {
					t.Errorf("status %d, want 403", r.status)
				}
				page := b.get("/cart")
				if got := cartOnPage(t, page.body).String(); got != "mug=2" {
					t.Errorf("cart changed to %s", got)
				}
				if !strings.Contains(page.body, "Hello, Alice") {
					t.Error("the user was logged out or switched")
				}
				if b.csrfCookie() == attacker.csrfCookie() {
					t.Error("the shop kept the planted cookie instead of issuing Alice a token")
				}
			})
		}
	}
}

func TestLoginPage(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	r := b.get("/login")
	if r.status != http.StatusOK {
		t.Fatalf("GET /login: %d", r.status)
	}
	for _, u := range demoUsers {
		if !strings.Contains(r.body, "<code>"+u.Name+"</code>") || !strings.Contains(r.body, "<code>"+u.Password+"</code>") {
			t.Errorf("the login page does not list the demo login %s / %s", u.Name, u.Password)
		}
	}
}

func TestLoginRejectsBadCredentials(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("mug", 1)
	b.get("/login")
	before := b.sessionCookie()
	for _, creds := range [][2]string{{"alice", "nope"}, {"alice", "builder"}, {"mallory", "wonderland"}, {"Alice", "wonderland"}} {
		r := b.post("/login", url.Values{"user": {creds[0]}, "password": {creds[1]}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("login %s/%s: status %d, want 401", creds[0], creds[1], r.status)
		}
		if msgs := pageMessages(r.body); len(msgs) == 0 || msgs[len(msgs)-1] != "Unknown user or wrong password." {
			t.Errorf("login %s/%s: messages %q", creds[0], creds[1], msgs)
		}
		if !strings.Contains(r.body, `value="`+creds[0]+`"`) {
			t.Errorf("login %s/%s: the form forgot the user name", creds[0], creds[1])
		}
	}
	if got := b.sessionCookie(); got != before {
		t.Error("a failed login changed the session ID")
	}
	r := b.get("/cart")
	if strings.Contains(r.body, "Hello,") {
		t.Error("logged in after failed logins")
	}
	if got := cartOnPage(t, r.body).String(); got != "mug=1" {
		t.Errorf("cart = %s, want mug=1", got)
	}
}

func TestLoginRegeneratesAndKeepsTheAnonymousCart(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.get("/")
	b.add("mug", 2)
	b.add("stickers", 3)
	b.get("/login")
	oldID, oldToken := b.sessionCookie(), b.csrf

	b.mustPost("/login", url.Values{"user": {"alice"}, "password": {"wonderland"}}, "/cart")
	r := b.get("/cart")
	if !strings.Contains(r.body, `id="greeting">Hello, Alice<`) {
		t.Error("the header does not greet Alice")
	}
	if got := cartOnPage(t, r.body).String(); got != "mug=2 stickers=3" {
		t.Errorf("cart after login = %s, want mug=2 stickers=3", got)
	}
	want := "Welcome, Alice! We kept the 5 items you picked before logging in: your cart now holds 5."
	if msgs := pageMessages(r.body); len(msgs) != 1 || msgs[0] != want {
		t.Errorf("messages %q, want %q", msgs, want)
	}

	// Fixation: the ID from before login is worthless now.
	if newID := b.sessionCookie(); newID == "" || newID == oldID {
		t.Fatalf("the session ID did not change at login")
	}
	if b.csrf == oldToken {
		t.Error("the CSRF token did not change at login")
	}
	attacker := newBrowser(t, srv)
	attacker.setSessionCookie(oldID)
	r = attacker.get("/cart")
	if strings.Contains(r.body, "Hello, Alice") || len(cartOnPage(t, r.body)) != 0 {
		t.Error("the pre-login session ID still opens the session")
	}
	attacker.get("/")
	attacker.add("tee", 1) // the first write gives the attacker a session of their own
	if attacker.sessionCookie() == oldID {
		t.Error("the shop adopted the pre-login ID")
	}
	// The old token no longer passes, even in Alice's own browser.
	if r := b.post("/cart/add", url.Values{"csrf": {oldToken}, "product": {"mug"}, "qty": {"1"}}); r.status != http.StatusForbidden {
		t.Errorf("the pre-login CSRF token: status %d, want 403", r.status)
	}
}

func TestLoginMergesIntoTheSavedCart(t *testing.T) {
	srv := startShop(t, serverConfig{})
	laptop := newBrowser(t, srv)
	laptop.login("alice", "wonderland")
	laptop.add("mug", 1)
	laptop.add("hoodie", 1)

	phone := newBrowser(t, srv)
	phone.get("/")
	phone.add("mug", 2)
	phone.add("socks", 1)
	phone.login("alice", "wonderland")
	if got := phone.cart().String(); got != "hoodie=1 mug=3 socks=1" {
		t.Errorf("merged cart = %s, want hoodie=1 mug=3 socks=1", got)
	}
	if got := laptop.cart().String(); got != "hoodie=1 mug=3 socks=1" {
		t.Errorf("the other browser sees %s", got)
	}

	// Logging in again with an empty anonymous cart adds nothing.
	tablet := newBrowser(t, srv)
	r := tablet.login("alice", "wonderland")
	if got := cartOnPage(t, r.body).String(); got != "hoodie=1 mug=3 socks=1" {
		t.Errorf("third browser: %s", got)
	}
	if msgs := pageMessages(r.body); len(msgs) != 1 || msgs[0] != "Welcome back, Alice! Your saved cart holds 5 items." {
		t.Errorf("messages %q", msgs)
	}

	// Merging caps each line at 99.
	big := newBrowser(t, srv)
	big.get("/")
	big.add("mug", 99)
	big.login("alice", "wonderland")
	if got := big.cart()["mug"]; got != 99 {
		t.Errorf("merged mug quantity %d, want 99", got)
	}
}

func TestCartFollowsTheUserToASecondBrowser(t *testing.T) {
	srv := startShop(t, serverConfig{})
	first := newBrowser(t, srv)
	first.get("/")
	first.add("notebook", 2)
	first.login("alice", "wonderland")

	second := newBrowser(t, srv)
	second.login("alice", "wonderland")
	if got := second.cart().String(); got != "notebook=2" {
		t.Fatalf("second browser's cart = %s, want notebook=2", got)
	}
	second.add("tee", 1)
	second.mustPost("/cart/update", url.Values{"product": {"notebook"}, "qty": {"4"}}, "/cart")
	if got := first.cart().String(); got != "notebook=4 tee=1" {
		t.Errorf("first browser's cart = %s, want notebook=4 tee=1", got)
	}

	// Bob's cart is his own.
	bob := newBrowser(t, srv)
	bob.login("bob", "builder")
	if got := bob.cart(); len(got) != 0 {
		t.Errorf("Bob sees %s", got)
	}

	// Logging out of one browser leaves the other logged in.
	second.get("/")
	second.mustPost("/logout", nil, "/")
	if got := second.cart(); len(got) != 0 {
		t.Errorf("after logout the second browser still shows %s", got)
	}
	r := first.get("/cart")
	if !strings.Contains(r.body, "Hello, Alice") || cartOnPage(t, r.body).String() != "notebook=4 tee=1" {
		t.Error("logging out the second browser disturbed the first")
	}
}

func TestLogoutDestroysTheSession(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})
	b := newBrowser(t, srv)
	b.login("alice", "wonderland")
	b.add("tee", 2)
	b.get("/")
	id := b.sessionCookie()

	b.mustPost("/logout", nil, "/")
	r := b.get("/")
	if strings.Contains(r.body, "Hello, Alice") {
		t.Error("still greeted after logout")
	}
	if msgs := pageMessages(r.body); len(msgs) != 1 || !strings.HasPrefix(msgs[0], "You are logged out.") {
		t.Errorf("messages %q", msgs)
	}
	if b.sessionCookie() == id {
		t.Error("the browser kept the logged-in session ID")
	}
	if got := b.cart(); len(got) != 0 {
		t.Errorf("cart after logout = %s, want empty", got)
	}
	if _, _, err := st.Load(context.Background(), "shop:session:"+id, 0); err == nil {
		t.Error("the logged-in session is still in the store")
	}
	replay := newBrowser(t, srv)
	replay.setSessionCookie(id)
	if strings.Contains(replay.get("/").body, "Hello, Alice") {
		t.Error("the logged-out session ID still logs in")
	}

	// The saved cart waits for the next login.
	b.login("alice", "wonderland")
	if got := b.cart().String(); got != "tee=2" {
		t.Errorf("cart after logging in again = %s, want tee=2", got)
	}
}

// Two tabs (or two browsers of one user) adding at the same moment lose
// nothing: the cart changes are atomic read-modify-writes.
func TestConcurrentAddsLoseNothing(t *testing.T) {
	const adds = 20
	for _, loggedIn := range []bool{false, true} {
		t.Run(fmt.Sprintf("loggedIn=%v", loggedIn), func(t *testing.T) {
			srv := startShop(t, serverConfig{})
			tabs := []*browser{newBrowser(t, srv)}
			if loggedIn {
				tabs[0].login("alice", "wonderland")
				tabs = append(tabs, newBrowser(t, srv)) // a second device
				tabs[1].login("alice", "wonderland")
			} else {
				// The first write creates the session. Two tabs making
				// their first change at once would each start their own,
				// and the browser would keep one; so start it here.
				tabs[0].get("/")
				tabs[0].add("notebook", 1)
				tabs[0].get("/") // shows that add's flash message
			}
			products := []string{"mug", "tee", "socks", "stickers"}
			var wg sync.WaitGroup
			errs := make(chan string, adds)
			for i := range adds {
				b := tabs[i%len(tabs)]
				form := url.Values{"csrf": {b.csrf}, "product": {products[i%len(products)]}, "qty": {"1"}}
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPost, b.base+"/cart/add", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := b.client.Do(req)
					if err != nil {
						errs <- err.Error()
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusSeeOther {
						errs <- fmt.Sprintf("status %d", resp.StatusCode)
					}
				})
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			r := tabs[0].get("/cart")
			want := "mug=5 socks=5 stickers=5 tee=5"
			if !loggedIn {
				want = "mug=5 notebook=1 socks=5 stickers=5 tee=5"
			}
			if got := cartOnPage(t, r.body).String(); got != want {
				t.Errorf("cart = %s, want %s", got, want)
			}
			flashes := len(pageMessages(r.body))
			if len(tabs) > 1 {
				flashes += len(pageMessages(tabs[1].get("/").body))
			}
			if flashes != adds {
				t.Errorf("%d flash messages, want %d", flashes, adds)
			}
		})
	}
}

func TestSessionPage(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	r := b.get("/session")
	if r.status != http.StatusOK || !strings.Contains(r.body, "none yet: nothing is stored") {
		t.Errorf("first visit to /session: %d, no 'none yet: nothing is stored'", r.status)
	}
	if b.get("/session"); b.sessionCookie() != "" {
		t.Error("looking at the session page created a session")
	}
	b.get("/")
	b.add("mug", 1)
	r = b.get("/session")
	id := b.sessionCookie()
	if !strings.Contains(r.body, "<code>"+id[:8]+"…</code>") {
		t.Errorf("the session page does not show the ID's first characters %q", id[:8])
	}
	if strings.Contains(r.body, id) {
		t.Error("the session page shows the whole session ID")
	}
	if !strings.Contains(r.body, "<code>"+keyCart+"</code>") {
		t.Errorf("the session page does not list the key %q", keyCart)
	}
	if strings.Contains(r.body, "<code>csrf</code>") {
		t.Error("the session holds a CSRF token: it belongs in its own cookie")
	}
	if !strings.Contains(r.body, "1 item: mug=1") {
		t.Error("the session page does not show the cart's value")
	}
	// The shop keeps ginsession's default lifetime.
	if want := fmt.Sprintf("in %d days", ginsession.DefaultLifetime/(24*time.Hour)); !strings.Contains(r.body, want) {
		t.Errorf("the session page does not say it expires %s", want)
	}
	b.login("alice", "wonderland")
	r = b.get("/session")
	if strings.Contains(r.body, "<code>cart</code>") || !strings.Contains(r.body, "The session holds no keys.") {
		t.Error("after login the session should hold no keys of the shop's: the cart is saved under the user's name")
	}
	if !strings.Contains(r.body, `<dd id="session-user">Alice `) || !strings.Contains(r.body, "ginsession.Login") {
		t.Error("the session page does not say that ginsession.Login bound the session to Alice")
	}
}

func TestNotFound(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	for _, path := range []string{"/nope", "/cart/add", "/static/missing.css"} {
		r := b.get(path)
		if r.status != http.StatusNotFound || !strings.Contains(r.body, "There is no page at "+path) {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}
}

// With -store null every page still renders; nothing is kept, so the
// cart stays empty. The forms pass their CSRF check, which needs no store.
func TestNullStoreServesEveryPage(t *testing.T) {
	srv := startShop(t, serverConfig{Store: nullstore.New(), StoreName: "null"})
	b := newBrowser(t, srv)
	for _, path := range []string{"/", "/cart", "/login", "/session", "/account/sessions", "/static/style.css"} {
		r := b.get(path)
		if r.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, r.status)
		}
		if path != "/static/style.css" && !strings.Contains(r.body, "Sessions are switched off") {
			t.Errorf("GET %s does not say that sessions are off", path)
		}
	}
	b.get("/")
	b.add("mug", 1)
	if r := b.post("/cart/add", url.Values{"csrf": {"forged"}, "product": {"mug"}, "qty": {"1"}}); r.status != http.StatusForbidden {
		t.Errorf("POST /cart/add with a forged token: %d, want 403", r.status)
	}
	if got := b.cart(); len(got) != 0 {
		t.Errorf("cart = %s, want empty", got)
	}
}

func TestStoreOutageIs503(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})
	b := newBrowser(t, srv)
	b.login("alice", "wonderland")
	b.add("mug", 1)
	b.get("/")
	st.down.Store(true)
	for _, path := range []string{"/", "/cart", "/session", "/account/sessions"} {
		r := b.get(path)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "cannot reach its session store") {
			t.Errorf("GET %s with the store down: %d %q", path, r.status, pageMessages(r.body))
		}
	}
	if r := b.post("/cart/add", url.Values{"product": {"mug"}, "qty": {"1"}}); r.status != http.StatusServiceUnavailable {
		t.Errorf("POST /cart/add with the store down: %d", r.status)
	}
	if r := b.get("/static/style.css"); r.status != http.StatusOK {
		t.Errorf("the stylesheet needs no store, got %d", r.status)
	}
	st.down.Store(false)
	r := b.get("/cart")
	if !strings.Contains(r.body, "Hello, Alice") || cartOnPage(t, r.body).String() != "mug=1" {
		t.Error("the session or the cart did not survive the outage")
	}
}
