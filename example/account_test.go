package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// User-Agents of the devices the tests log in from.
const (
	firefoxOnWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
	safariOnIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	chromeOnAndroid  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)

// A listedSession is one row of the "Your sessions" page.
type listedSession struct {
	current bool
	handle  string
	device  string
	ago     string
	button  bool // it has a "Log out of this device" button
}

var (
	rowStart   = regexp.MustCompile(`<tr class="device[^"]*" data-current="(true|false)" data-handle="([^"]*)">`)
	rowDevice  = regexp.MustCompile(`<span class="name" title="[^"]*">([^<]*)</span>`)
	rowAgo     = regexp.MustCompile(`<time [^>]*title="[^"]*">([^<]*)</time>`)
	rowHandle  = regexp.MustCompile(`name="handle" value="([^"]*)"`)
	thisDevice = `<span class="this-device">this device</span>`
)

// sessionsOnPage parses the table of a "Your sessions" page.
func sessionsOnPage(t *testing.T, body string) []listedSession {
	t.Helper()
	var out []listedSession
	for _, chunk := range strings.Split(body, `<tr class="device`)[1:] {
		row, _, _ := strings.Cut(`<tr class="device`+chunk, "</tr>")
		m := rowStart.FindStringSubmatch(row)
		d := rowDevice.FindStringSubmatch(row)
		a := rowAgo.FindStringSubmatch(row)
		if m == nil || d == nil || a == nil {
			t.Fatalf("a sessions row without its fields:\n%s", row)
		}
		s := listedSession{current: m[1] == "true", handle: m[2], device: html.UnescapeString(d[1]), ago: a[1]}
		if h := rowHandle.FindStringSubmatch(row); h != nil {
			s.button = true
			if h[1] != s.handle {
				t.Errorf("the row of %s posts handle %q but is marked %q", s.device, h[1], s.handle)
			}
		}
		if s.current != strings.Contains(row, thisDevice) {
			t.Errorf("the row of %s: current=%v, but the 'this device' marker says otherwise", s.device, s.current)
		}
		out = append(out, s)
	}
	return out
}

// sessions loads the browser's "Your sessions" page and parses it.
func (b *browser) sessions() []listedSession {
	b.t.Helper()
	r := b.get("/account/sessions")
	if r.status != http.StatusOK {
		b.t.Fatalf("GET /account/sessions: %d", r.status)
	}
	return sessionsOnPage(b.t, r.body)
}

// loggedIn reports whether a page greets a logged-in user.
func loggedIn(body string) bool { return strings.Contains(body, `id="greeting"`) }

// endSession posts the "Log out of this device" form for handle and
// returns the flash message the page it leads to shows.
func (b *browser) endSession(handle string) []string {
	b.t.Helper()
	b.mustPost("/account/sessions/end", url.Values{"handle": {handle}}, "/account/sessions")
	return pageMessages(b.get("/account/sessions").body)
}

func TestSessionsPageListsEveryDevice(t *testing.T) {
	srv := startShop(t, serverConfig{})
	anon := newBrowser(t, srv)
	if r := anon.get("/"); strings.Contains(r.body, `id="nav-sessions"`) {
		t.Error("an anonymous visitor gets a link to Your sessions")
	}

	laptop := newBrowser(t, srv)
	laptop.ua = firefoxOnWindows
	laptop.login("alice", "wonderland")
	phone := newBrowser(t, srv)
	phone.ua = safariOnIPhone
	phone.get("/")
	phone.add("mug", 1) // an anonymous session first: Login regenerates it
	phone.login("alice", "wonderland")
	bob := newBrowser(t, srv)
	bob.ua = chromeOnAndroid
	bob.login("bob", "builder")

	if r := laptop.get("/"); !strings.Contains(r.body, `href="/account/sessions" id="nav-sessions"`) {
		t.Error("no link to Your sessions in the header of a logged-in user")
	}
	got := laptop.sessions()
	want := []listedSession{
		{current: true, device: "Firefox 128 on Windows", ago: "just now"},
		{current: false, device: "Safari 17 on iPhone", ago: "just now", button: true},
	}
	if len(got) != len(want) {
		t.Fatalf("the laptop lists %d sessions, want 2: %+v", len(got), got)
	}
	for i := range want {
		want[i].handle = got[i].handle
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
		if len(got[i].handle) < 20 {
			t.Errorf("row %d has handle %q", i, got[i].handle)
		}
	}
	if got[0].handle == got[1].handle {
		t.Error("two sessions with one handle")
	}
	// The phone sees the same two, itself first.
	fromPhone := phone.sessions()
	if len(fromPhone) != 2 || !fromPhone[0].current || fromPhone[0].handle != got[1].handle || fromPhone[1].handle != got[0].handle {
		t.Errorf("the phone lists %+v", fromPhone)
	}
	// A handle is not the session ID, nor part of it.
	for _, s := range got {
		for _, id := range []string{laptop.sessionCookie(), phone.sessionCookie()} {
			if strings.Contains(id, s.handle) || strings.Contains(s.handle, id[:16]) {
				t.Errorf("handle %q and session ID %q overlap", s.handle, id)
			}
		}
	}
	r := laptop.get("/account/sessions")
	if strings.Contains(r.body, laptop.sessionCookie()) || strings.Contains(r.body, phone.sessionCookie()) {
		t.Error("the sessions page shows a session ID")
	}
	if !strings.Contains(r.body, `title="`+html.EscapeString(firefoxOnWindows)+`"`) {
		t.Error("the whole User-Agent is not in the device's tooltip")
	}
	if !strings.Contains(r.body, `id="end-others"`) {
		t.Error("no 'Log out everywhere else' button")
	}

	// Bob sees his own session only.
	if got := bob.sessions(); len(got) != 1 || got[0].device != "Chrome 126 on Android" || !got[0].current {
		t.Errorf("Bob lists %+v", got)
	}
}

// Looking at the page without logging in asks to log in, and stores
// nothing.
func TestSessionsPageWithoutLogin(t *testing.T) {
	st := newCountingStore()
	srv := startShop(t, serverConfig{Store: st})
	b := newBrowser(t, srv)
	r := b.get("/account/sessions")
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="sessions-login"`) || strings.Contains(r.body, `id="sessions"`) {
		t.Errorf("GET /account/sessions logged out: %d, want 200 asking to log in", r.status)
	}
	if b.sessionCookie() != "" || st.saves.Load() != 0 {
		t.Error("looking at the sessions page logged out stored something")
	}
	// Nothing to end without logging in, even with a valid token.
	for _, path := range []string{"/account/sessions/end", "/account/sessions/end-others"} {
		if r := b.post(path, url.Values{"handle": {"x"}}); r.status != http.StatusForbidden {
			t.Errorf("POST %s logged out: %d, want 403", path, r.status)
		}
	}
}

func TestEndAnotherSession(t *testing.T) {
	srv := startShop(t, serverConfig{})
	laptop := newBrowser(t, srv)
	laptop.ua = firefoxOnWindows
	laptop.login("alice", "wonderland")
	phone := newBrowser(t, srv)
	phone.ua = safariOnIPhone
	phone.login("alice", "wonderland")
	phone.add("tee", 1)
	phoneID := phone.sessionCookie()

	list := laptop.sessions()
	if len(list) != 2 || list[1].current {
		t.Fatalf("the laptop lists %+v", list)
	}
	msgs := laptop.endSession(list[1].handle)
	if len(msgs) != 1 || msgs[0] != "Logged out of Safari 17 on iPhone." {
		t.Errorf("flash %q, want %q", msgs, "Logged out of Safari 17 on iPhone.")
	}
	if got := laptop.sessions(); len(got) != 1 || !got[0].current {
		t.Errorf("after ending the phone the laptop lists %+v", got)
	}

	// The phone's next request is logged out, and its cookie is dropped.
	r := phone.get("/cart")
	if loggedIn(r.body) || len(cartOnPage(t, r.body)) != 0 {
		t.Error("the ended phone is still logged in")
	}
	if phone.sessionCookie() != "" {
		t.Errorf("the ended phone still holds its session cookie")
	}
	replay := newBrowser(t, srv)
	replay.setSessionCookie(phoneID)
	if loggedIn(replay.get("/").body) {
		t.Error("the ended session's ID still logs in")
	}
	// A form the phone loaded before carries Alice's token: it no longer
	// passes, now that the phone is nobody's.
	phone.csrf = laptop.csrf
	if r := phone.post("/cart/add", url.Values{"product": {"mug"}, "qty": {"1"}}); r.status != http.StatusForbidden {
		t.Errorf("the ended phone's old form: %d, want 403", r.status)
	}

	// The laptop is untouched, and so is Alice's saved cart.
	r = laptop.get("/cart")
	if !loggedIn(r.body) || cartOnPage(t, r.body).String() != "tee=1" {
		t.Error("ending the phone disturbed the laptop or the saved cart")
	}
	// Ending it again changes nothing.
	if msgs := laptop.endSession(list[1].handle); len(msgs) != 1 || msgs[0] != "That session had already ended." {
		t.Errorf("ending it twice: flash %q", msgs)
	}
	// The phone can log in again: a new session, a new handle.
	phone.login("alice", "wonderland")
	if got := laptop.sessions(); len(got) != 2 || got[1].handle == list[1].handle {
		t.Errorf("after the phone logs in again the laptop lists %+v", got)
	}
}

// Ending this browser's own session from the list logs it out, as the
// Log out button does.
func TestEndOwnSession(t *testing.T) {
	srv := startShop(t, serverConfig{})
	b := newBrowser(t, srv)
	b.login("alice", "wonderland")
	list := b.sessions()
	if len(list) != 1 || !list[0].current || list[0].button {
		t.Fatalf("lists %+v, want this device alone, without a button", list)
	}
	b.mustPost("/account/sessions/end", url.Values{"handle": {list[0].handle}}, "/")
	r := b.get("/")
	if loggedIn(r.body) {
		t.Error("still logged in after ending this browser's session")
	}
	if msgs := pageMessages(r.body); len(msgs) != 1 || !strings.HasPrefix(msgs[0], "You are logged out.") {
		t.Errorf("flash %q", msgs)
	}
}

func TestEndingSessionsNeedsTheCSRFToken(t *testing.T) {
	srv := startShop(t, serverConfig{})
	laptop := newBrowser(t, srv)
	laptop.login("alice", "wonderland")
	phone := newBrowser(t, srv)
	phone.login("alice", "wonderland")
	handle := laptop.sessions()[1].handle

	anon := newBrowser(t, srv)
	anon.get("/")
	for name, token := range map[string]string{
		"no token":        "",
		"a forged token":  strings.Repeat("A", len(laptop.csrf)),
		"another's token": phone.csrf, // Alice's too, but not this browser's cookie
		"a visitor's":     anon.csrf,
	} {
		for _, path := range []string{"/account/sessions/end", "/account/sessions/end-others"} {
			form := url.Values{"handle": {handle}, "csrf": {token}}
			if r := laptop.post(path, form); r.status != http.StatusForbidden {
				t.Errorf("POST %s with %s: %d, want 403", path, name, r.status)
			}
		}
	}
	if !loggedIn(phone.get("/").body) || len(laptop.sessions()) != 2 {
		t.Error("a refused form ended a session")
	}
}

func TestEndingAnotherUsersSessionDoesNothing(t *testing.T) {
	srv := startShop(t, serverConfig{})
	alice := newBrowser(t, srv)
	alice.login("alice", "wonderland")
	bob := newBrowser(t, srv)
	bob.login("bob", "builder")
	bobs := bob.sessions()
	if len(bobs) != 1 {
		t.Fatalf("Bob lists %+v", bobs)
	}

	if msgs := alice.endSession(bobs[0].handle); len(msgs) != 1 || msgs[0] != "That session had already ended." {
		t.Errorf("Alice ending Bob's session: flash %q", msgs)
	}
	if !loggedIn(bob.get("/").body) {
		t.Error("Alice logged Bob out with his session's handle")
	}
	if got := bob.sessions(); len(got) != 1 || got[0].handle != bobs[0].handle {
		t.Errorf("Bob now lists %+v", got)
	}
	// Nor does "everywhere else" reach beyond Alice's own sessions.
	alice.mustPost("/account/sessions/end-others", nil, "/account/sessions")
	if !loggedIn(bob.get("/").body) {
		t.Error("Alice's 'log out everywhere else' logged Bob out")
	}
	// A handle that names nothing, or nothing sensible, changes nothing.
	for _, h := range []string{"nope", strings.Repeat("x", 5000)} {
		alice.mustPost("/account/sessions/end", url.Values{"handle": {h}}, "/account/sessions")
	}
	if r := alice.post("/account/sessions/end", nil); r.status != http.StatusBadRequest {
		t.Errorf("no handle: %d, want 400", r.status)
	}
	if !loggedIn(alice.get("/").body) || !loggedIn(bob.get("/").body) {
		t.Error("a bad handle logged someone out")
	}
}

func TestLogOutEverywhereElse(t *testing.T) {
	srv := startShop(t, serverConfig{})
	laptop := newBrowser(t, srv)
	laptop.login("alice", "wonderland")
	others := []*browser{newBrowser(t, srv), newBrowser(t, srv)}
	for _, b := range others {
		b.login("alice", "wonderland")
	}
	api := newAPIClient(t, srv)
	token := api.login("alice", "wonderland")
	bob := newBrowser(t, srv)
	bob.login("bob", "builder")
	if n := len(laptop.sessions()); n != 4 {
		t.Fatalf("the laptop lists %d sessions, want 4", n)
	}

	laptop.mustPost("/account/sessions/end-others", nil, "/account/sessions")
	r := laptop.get("/account/sessions")
	if msgs := pageMessages(r.body); len(msgs) != 1 || msgs[0] != "Logged out of 3 other sessions." {
		t.Errorf("flash %q, want Logged out of 3 other sessions.", msgs)
	}
	if got := sessionsOnPage(t, r.body); len(got) != 1 || !got[0].current {
		t.Errorf("afterwards the laptop lists %+v", got)
	}
	for i, b := range others {
		if loggedIn(b.get("/").body) {
			t.Errorf("browser %d is still logged in", i)
		}
	}
	if r := api.call(http.MethodGet, "/api/cart", token, ""); r.status != http.StatusUnauthorized {
		t.Errorf("the API token after 'everywhere else': %d, want 401", r.status)
	}
	if !loggedIn(laptop.get("/").body) || !loggedIn(bob.get("/").body) {
		t.Error("the laptop or Bob was logged out")
	}

	laptop.mustPost("/account/sessions/end-others", nil, "/account/sessions")
	if msgs := pageMessages(laptop.get("/account/sessions").body); len(msgs) != 1 || msgs[0] != "You were not logged in anywhere else." {
		t.Errorf("the second time: flash %q", msgs)
	}
}

func TestRememberMe(t *testing.T) {
	srv := startShop(t, serverConfig{})
	for _, remember := range []bool{false, true} {
		b := newBrowser(t, srv)
		b.get("/login")
		form := url.Values{"user": {"alice"}, "password": {"wonderland"}}
		if remember {
			form.Set("remember", "1")
		}
		r := b.post("/login", form)
		if r.status != http.StatusSeeOther {
			t.Fatalf("login: %d", r.status)
		}
		var cookie string
		for _, line := range r.header.Values("Set-Cookie") {
			if strings.HasPrefix(line, "session=") {
				cookie = line
			}
		}
		persistent := strings.Contains(cookie, "Max-Age=") || strings.Contains(cookie, "Expires=")
		switch {
		case cookie == "":
			t.Errorf("remember=%v: the login sets no session cookie", remember)
		case persistent != remember:
			t.Errorf("remember=%v: the session cookie is %q", remember, cookie)
		}
		if remember && !strings.Contains(cookie, "Max-Age=1209600") {
			t.Errorf("a remembered cookie should last an idle session's lifetime, 14 days: %q", cookie)
		}
		// Later responses that send the cookie again keep the choice.
		b.get("/")
		b.add("mug", 1)
		for _, line := range b.get("/").header.Values("Set-Cookie") {
			if strings.HasPrefix(line, "session=") && strings.Contains(line, "Max-Age=") != remember {
				t.Errorf("remember=%v: a later response sets %q", remember, line)
			}
		}
	}
	if r := newBrowser(t, srv).get("/login"); !strings.Contains(r.body, `type="checkbox" name="remember"`) {
		t.Error("the login form has no Remember me checkbox")
	}
}

func TestDescribeDevice(t *testing.T) {
	for ua, want := range map[string]string{
		firefoxOnWindows: "Firefox 128 on Windows",
		safariOnIPhone:   "Safari 17 on iPhone",
		chromeOnAndroid:  "Chrome 126 on Android",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87": "Edge 126 on macOS",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/142.0.0.0 Safari/537.36":                           "Headless Chrome 142 on Linux",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15":                   "Safari 17 on macOS",
		"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1":   "Chrome 126 on iPad",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36":                          "Chrome 126 on ChromeOS",
		"Mozilla/5.0 (compatible; SomeBot)":           "Browser",
		"curl/8.5.0":                                  "curl 8.5.0",
		"Go-http-client/1.1":                          "Go program",
		"python-requests/2.32.3":                      "python-requests 2.32.3",
		"gopher-goods-cli/1.0 (+https://example.com)": "gopher-goods-cli 1.0",
		"":            "Unknown device",
		"   ":         "Unknown device",
		"SomeProgram": "SomeProgram",
	} {
		if got := describeDevice(ua); got != want {
			t.Errorf("describeDevice(%q) = %q, want %q", ua, got, want)
		}
	}
	if got := describeDevice(strings.Repeat("x", 300)); len([]rune(got)) > 41 {
		t.Errorf("a long User-Agent is described in %d characters", len([]rune(got)))
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2025, 12, 2, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		-time.Hour:          "just now", // another instance's clock runs ahead
		0:                   "just now",
		59 * time.Second:    "just now",
		time.Minute:         "1 minute ago",
		2 * time.Minute:     "2 minutes ago",
		59 * time.Minute:    "59 minutes ago",
		time.Hour:           "1 hour ago",
		23 * time.Hour:      "23 hours ago",
		30 * time.Hour:      "yesterday",
		50 * time.Hour:      "2 days ago",
		14 * 24 * time.Hour: "14 days ago",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(-%v) = %q, want %q", d, got, want)
		}
	}
}
