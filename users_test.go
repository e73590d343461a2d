package ginsession

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/memstore"
)

// usersApp adds the routes of the user-session functions to an app.
func usersApp(t *testing.T, opts Options) *app {
	a := newApp(t, opts)
	a.POST("/login", func(c *gin.Context) {
		if err := Login(c, c.Query("u")); err != nil {
			c.String(http.StatusOK, "error: %v", err)
			return
		}
		c.String(http.StatusOK, "ok")
	})
	a.GET("/whoami", func(c *gin.Context) { c.String(http.StatusOK, UserID(c)) })
	a.GET("/sessions", func(c *gin.Context) {
		infos, err := UserSessions(c, c.Query("u"))
		if err != nil {
			c.String(http.StatusOK, "error: %v", err)
			return
		}
		var b strings.Builder
		for _, i := range infos {
			fmt.Fprintf(&b, "%s|%v|%s|%d;", i.Handle, i.Current, i.UserAgent, i.LastSeen.Unix())
		}
		c.String(http.StatusOK, b.String())
	})
	a.POST("/revoke", func(c *gin.Context) {
		if err := RevokeSession(c, c.Query("u"), c.Query("h")); err != nil {
			c.String(http.StatusOK, "error: %v", err)
			return
		}
		c.String(http.StatusOK, "ok")
	})
	a.POST("/revoke-all", func(c *gin.Context) {
		n, err := RevokeUserSessions(c, c.Query("u"), c.Query("keep") == "1")
		c.String(http.StatusOK, "%d %v", n, err)
	})
	a.POST("/remember", func(c *gin.Context) { Remember(c, c.Query("r") == "1"); c.Status(http.StatusNoContent) })
	return a
}

type listed struct {
	handle, ua string
	current    bool
	seen       int64
}

func list(t *testing.T, br *browser, user string) []listed {
	t.Helper()
	body := br.do("GET", "/sessions?u="+user).Body.String()
	if strings.HasPrefix(body, "error") {
		t.Fatal(body)
	}
	var out []listed
	for _, row := range strings.Split(strings.TrimSuffix(body, ";"), ";") {
		if row == "" {
			continue
		}
		f := strings.Split(row, "|")
		var seen int64
		fmt.Sscan(f[3], &seen)
		out = append(out, listed{handle: f[0], current: f[1] == "true", ua: f[2], seen: seen})
	}
	return out
}

// withUA is a browser whose requests carry a User-Agent.
type uaHandler struct {
	http.Handler
	ua string
}

func (h uaHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Header.Set("User-Agent", h.ua)
	h.Handler.ServeHTTP(w, r)
}

// TestUserSessions checks Login, UserID and UserSessions on every backend:
// each device is listed once with its User-Agent, the request's own marked
// Current, handles that reveal no session ID.
func TestUserSessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, true, func(t *testing.T, b backend) {
		a := usersApp(t, Options{Store: b.store})
		var devices []*browser
		for i := range 3 {
			br := newBrowser(t, uaHandler{a, fmt.Sprintf("device %d", i)})
			br.do("POST", "/set?v=before")
			wantBody(t, br.do("POST", "/login?u=alice"), 200, "ok")
			wantBody(t, br.do("GET", "/whoami"), 200, "alice")
			wantBody(t, br.do("GET", "/get"), 200, "before true") // Login keeps the data
			devices = append(devices, br)
		}
		got := list(t, devices[1], "alice")
		if len(got) != 3 {
			t.Fatalf("listed %d sessions, want 3: %v", len(got), got)
		}
		uas := map[string]bool{}
		for _, l := range got {
			uas[l.ua] = true
			for _, d := range devices {
				if id := d.cookie(); strings.Contains(id, l.handle) || strings.Contains(l.handle, id[:8]) {
					t.Fatalf("handle %q reveals a session ID", l.handle)
				}
			}
			if l.current != (l.ua == "device 1") {
				t.Fatalf("Current wrong: %+v", l)
			}
		}
		if len(uas) != 3 {
			t.Fatalf("user agents %v", uas)
		}
		if got := list(t, devices[0], "bob"); len(got) != 0 {
			t.Fatalf("bob has %v", got)
		}
	})
}

// TestConcurrentLogins checks that 20 concurrent Logins of one user from 20
// clients leave 20 listed sessions.
func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, func(t *testing.T, b backend) {
		a := usersApp(t, Options{Store: b.store})
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := newBrowser(t, a)
				if body := br.do("POST", "/login?u=carol").Body.String(); body != "ok" {
					t.Error(body)
				}
			}()
		}
		wg.Wait()
		if got := list(t, newBrowser(t, a), "carol"); len(got) != 20 {
			t.Fatalf("listed %d sessions after 20 concurrent logins", len(got))
		}
	})
}

// TestRevoke checks RevokeSession and RevokeUserSessions: a revoked
// session's next request finds an empty session and is told to drop its
// cookie; a request of a revoked session that loaded before the revocation
// cannot bring it back; and "log out everywhere" with and without the
// current session.
func TestRevoke(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, func(t *testing.T, b backend) {
		a := usersApp(t, Options{Store: b.store})
		loaded, release := make(chan struct{}), make(chan struct{})
		a.POST("/slow-set", func(c *gin.Context) {
			Get[string](c, "k")
			close(loaded)
			<-release
			Set(c, "k", "late write")
			c.Status(http.StatusNoContent)
		})
		login := func() *browser {
			br := newBrowser(t, a)
			br.do("POST", "/set?v=mine")
			br.do("POST", "/login?u=dave")
			return br
		}
		phone, laptop, tablet := login(), login(), login()
		var phoneHandle string
		for _, l := range list(t, phone, "dave") {
			if l.current {
				phoneHandle = l.handle
			}
		}
		// The phone is in the middle of a request when the laptop revokes it.
		done := make(chan struct{})
		go func() {
			defer close(done)
			req := httptest.NewRequest("POST", "/slow-set", nil)
			req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: phone.cookie()})
			a.ServeHTTP(httptest.NewRecorder(), req)
		}()
		<-loaded
		wantBody(t, laptop.do("POST", "/revoke?u=dave&h="+phoneHandle), 200, "ok")
		close(release)
		<-done
		rec := phone.do("GET", "/get")
		wantBody(t, rec, 200, " false")
		if c := sessionCookie(rec); c == nil || c.MaxAge >= 0 {
			t.Fatalf("the revoked session's cookie was not expired: %v", c)
		}
		if got := list(t, laptop, "dave"); len(got) != 2 {
			t.Fatalf("after revoking one: %v", got)
		}

		// Log out everywhere else: the tablet ends, the laptop stays.
		wantBody(t, laptop.do("POST", "/revoke-all?u=dave&keep=1"), 200, "1 <nil>")
		wantBody(t, tablet.do("GET", "/get"), 200, " false")
		wantBody(t, laptop.do("GET", "/get"), 200, "mine true")
		// And everywhere: the laptop's own session ends in this response.
		other := login()
		rec = laptop.do("POST", "/revoke-all?u=dave")
		wantBody(t, rec, 200, "2 <nil>")
		if c := sessionCookie(rec); c == nil || c.MaxAge >= 0 {
			t.Fatalf("the current session's cookie was not expired: %v", c)
		}
		wantBody(t, other.do("GET", "/get"), 200, " false")
		if got := list(t, newBrowser(t, a), "dave"); len(got) != 0 {
			t.Fatalf("after logging out everywhere: %v", got)
		}
	})
}

// TestIndexFollowsSessions checks that Destroy removes a bound session
// from the index at once, Login as another user moves it, expired sessions
// disappear without a sweeper, and MaxUserSessions ends the oldest.
func TestIndexFollowsSessions(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := usersApp(t, Options{Store: st, MaxUserSessions: 3})
	indexLen := func(user string) int {
		data, _, err := st.Load(context.Background(), a.cfg.indexKey(user), 0)
		if err != nil {
			return 0
		}
		es, _ := decodeIndex(user, data)
		return len(es)
	}
	br := newBrowser(t, a)
	br.do("POST", "/login?u=erin")
	br.do("GET", "/get")
	br.do("POST", "/destroy")
	if n := indexLen("erin"); n != 0 {
		t.Fatalf("Destroy left %d index entries", n)
	}
	br.do("POST", "/login?u=erin")
	br.do("POST", "/login?u=frank")
	if indexLen("erin") != 0 || len(list(t, br, "frank")) != 1 {
		t.Fatalf("Login as another user: erin %d, frank %v", indexLen("erin"), list(t, br, "frank"))
	}
	var all []*browser
	for range 5 {
		b := newBrowser(t, a)
		b.do("POST", "/set?v=x")
		b.do("POST", "/login?u=gina")
		all = append(all, b)
	}
	if got := list(t, br, "gina"); len(got) != 3 || indexLen("gina") != 3 {
		t.Fatalf("with MaxUserSessions 3: listed %d, index %d", len(got), indexLen("gina"))
	}
	alive := 0
	for _, b := range all {
		if b.do("GET", "/get").Body.String() == "x true" {
			alive++
		}
	}
	if alive != 3 {
		t.Fatalf("%d of 5 sessions alive past MaxUserSessions 3", alive)
	}

	short := usersApp(t, Options{Store: st, Lifetime: time.Second})
	sb := newBrowser(t, short)
	sb.do("POST", "/login?u=hank")
	time.Sleep(1100 * time.Millisecond)
	if got := list(t, newBrowser(t, short), "hank"); len(got) != 0 {
		t.Fatalf("an expired session is listed: %v", got)
	}
}

// TestLastSeen checks that a bound session's last-seen time is written at
// most once per minute: a read within the minute costs its one round
// trip, and a read after it updates the listing.
func TestLastSeen(t *testing.T) {
	t.Parallel()
	b := memBackend(t)
	a := usersApp(t, Options{Store: b.store})
	now := time.Now()
	var mu sync.Mutex
	a.cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	br := newBrowser(t, a)
	br.do("POST", "/login?u=ivy")
	first := list(t, br, "ivy")[0].seen
	mu.Lock()
	now = now.Add(30 * time.Second)
	mu.Unlock()
	b.trips.Store(0)
	br.do("GET", "/get")
	if n := b.trips.Load(); n != 1 {
		t.Fatalf("a read within the minute cost %d round trips", n)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	br.do("GET", "/get")
	if got := list(t, br, "ivy")[0].seen; got != now.Unix() || got == first {
		t.Fatalf("last seen %d, want %d", got, now.Unix())
	}
}

// TestRemember checks the per-session cookie choice and that it survives
// Login.
func TestRemember(t *testing.T) {
	t.Parallel()
	a := usersApp(t, Options{Store: memstore.New(), Cookie: CookieOptions{BrowserSession: true}})
	br := newBrowser(t, a)
	if c := sessionCookie(br.do("POST", "/set?v=x")); c == nil || c.MaxAge != 0 {
		t.Fatalf("default: %v", c)
	}
	if c := sessionCookie(br.do("POST", "/remember?r=1")); c == nil || c.MaxAge <= 0 {
		t.Fatalf("Remember(true): %v", c)
	}
	if c := sessionCookie(br.do("POST", "/login?u=jo")); c == nil || c.MaxAge <= 0 {
		t.Fatalf("after Login: %v", c)
	}
	if c := sessionCookie(br.do("POST", "/remember?r=0")); c == nil || c.MaxAge != 0 {
		t.Fatalf("Remember(false): %v", c)
	}
}

// TestUsersOutsideRequest checks the same listing and revoking from a
// background job, with a Users built from the middleware's Options.
func TestUsersOutsideRequest(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	opts := Options{Store: st, KeyPrefix: testPrefix(t), Logger: quiet}
	a := usersApp(t, opts)
	for range 2 {
		newBrowser(t, a).do("POST", "/login?u=kim")
	}
	users := NewUsers(opts)
	ctx := context.Background()
	infos, err := users.UserSessions(ctx, "kim")
	if err != nil || len(infos) != 2 || infos[0].Current {
		t.Fatalf("UserSessions = %v, %v", infos, err)
	}
	if n, err := users.RevokeUserSessions(ctx, "kim", infos[0].Handle); n != 1 || err != nil {
		t.Fatalf("RevokeUserSessions = %d, %v", n, err)
	}
	if err := users.RevokeSession(ctx, "kim", infos[0].Handle); err != nil {
		t.Fatal(err)
	}
	if infos, _ := users.UserSessions(ctx, "kim"); len(infos) != 0 {
		t.Fatalf("left %v", infos)
	}
}

// TestConcurrentLoginsAndRevocations races logins of one user against
// "log out everywhere": afterwards every live session of the user is
// listed, and every session that is not listed is dead.
func TestConcurrentLoginsAndRevocations(t *testing.T) {
	t.Parallel()
	forEachBackend(t, false, func(t *testing.T, b backend) {
		a := usersApp(t, Options{Store: b.store})
		admin := NewUsers(Options{Store: b.store, KeyPrefix: a.cfg.prefix, Logger: quiet})
		var wg sync.WaitGroup
		browsers := make([]*browser, 16)
		for i := range browsers {
			browsers[i] = newBrowser(t, a)
			wg.Go(func() {
				browsers[i].do("POST", "/set?v=x")
				browsers[i].do("POST", "/login?u=lee")
			})
			if i%4 == 0 {
				wg.Go(func() {
					if _, err := admin.RevokeUserSessions(context.Background(), "lee", ""); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		infos, err := admin.UserSessions(context.Background(), "lee")
		if err != nil {
			t.Fatal(err)
		}
		alive := 0
		for _, br := range browsers {
			if br.do("GET", "/whoami").Body.String() == "lee" {
				alive++
			}
		}
		if alive != len(infos) {
			t.Fatalf("%d sessions alive, %d listed", alive, len(infos))
		}
	})
}
