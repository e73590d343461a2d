package main

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

// "Your sessions": every browser and API client a user is logged in from,
// as ginsession.Login listed them, with a button to end each of the others
// and one to end them all. Ending a session is immediate on every instance:
// the next request that carries its cookie or token finds it empty, is
// logged out, and is told to drop the cookie or token.

// A deviceRow is one line of the sessions page.
type deviceRow struct {
	Handle    string // names the session for the "Log out of this device" form
	Device    string // "Firefox 128 on Windows", "curl 8.5.0"
	UserAgent string // the whole User-Agent, as a tooltip
	LastSeen  time.Time
	Ago       string // LastSeen, for people: "2 minutes ago"
	Created   time.Time
	Current   bool // the browser looking at the page
}

// sessionsPage lists the logged-in user's sessions, this browser's first,
// then the most recently active. A visitor who is not logged in is asked
// to log in; that stores nothing.
func (s *server) sessionsPage(c *gin.Context) {
	p, _, err := s.newPage(c, "sessions", "Your sessions")
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	if user := currentUser(c); user != "" {
		infos, err := ginsession.UserSessions(c, user)
		if err != nil {
			s.storeFailed(c, err)
			return
		}
		now := time.Now()
		for _, in := range infos {
			p.Devices = append(p.Devices, deviceRow{
				Handle: in.Handle, Device: describeDevice(in.UserAgent), UserAgent: in.UserAgent,
				LastSeen: in.LastSeen, Ago: ago(now, in.LastSeen), Created: in.Created, Current: in.Current,
			})
		}
		// This browser first; UserSessions sorted the rest, most recent first.
		slices.SortStableFunc(p.Devices, func(a, b deviceRow) int {
			switch {
			case a.Current == b.Current:
				return 0
			case a.Current:
				return -1
			default:
				return 1
			}
		})
	}
	s.render(c, http.StatusOK, "sessions", p)
}

// endSession ends one of the user's other sessions, named by its handle.
// A handle that is not among the user's live sessions (one that ended
// meanwhile, or another user's) changes nothing. This browser's own
// handle logs it out, as the Log out button does.
func (s *server) endSession(c *gin.Context) {
	user := currentUser(c)
	if user == "" {
		s.renderError(c, http.StatusForbidden, "You are not logged in, so there is no session of yours to end.")
		return
	}
	handle := c.PostForm("handle")
	if handle == "" {
		s.renderError(c, http.StatusBadRequest, "Which session? The form did not say.")
		return
	}
	// Listing first costs a few round trips, and says which device ended
	// (or that none did): RevokeSession does not report it.
	infos, err := ginsession.UserSessions(c, user)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	i := slices.IndexFunc(infos, func(in ginsession.SessionInfo) bool { return in.Handle == handle })
	switch {
	case i < 0:
		say(c, "info", "That session had already ended.")
	case infos[i].Current:
		s.logout(c)
		return
	default:
		if err := ginsession.RevokeSession(c, user, handle); err != nil {
			s.storeFailed(c, err)
			return
		}
		say(c, "ok", "Logged out of %s.", describeDevice(infos[i].UserAgent))
	}
	seeOther(c, "/account/sessions")
}

// endOtherSessions ends every session of the user but this browser's:
// "log out everywhere else", after a lost phone or a shared computer.
func (s *server) endOtherSessions(c *gin.Context) {
	user := currentUser(c)
	if user == "" {
		s.renderError(c, http.StatusForbidden, "You are not logged in, so there is no session of yours to end.")
		return
	}
	n, err := ginsession.RevokeUserSessions(c, user, true)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	if n == 0 {
		say(c, "info", "You were not logged in anywhere else.")
	} else {
		say(c, "ok", "Logged out of %d other %s.", n, plural(n, "session", "sessions"))
	}
	seeOther(c, "/account/sessions")
}

// describeDevice names the device a User-Agent comes from, the way people
// would: "Firefox 128 on Windows", "Safari 17 on iPhone", "curl 8.5.0".
// It recognises the common browsers and systems; anything else is named
// by its first product token, so a program's own User-Agent shows as it is.
func describeDevice(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return "Unknown device"
	}
	if !strings.HasPrefix(ua, "Mozilla/") { // a program, not a browser
		first, _, _ := strings.Cut(ua, " ")
		name, version, _ := strings.Cut(first, "/")
		if name == "Go-http-client" {
			return "Go program"
		}
		return clip(strings.TrimSpace(name+" "+version), 40)
	}
	browser := "Browser"
	for _, b := range []struct{ token, name string }{
		// Most specific first: Edge and Opera also say Chrome, Chrome also
		// says Safari.
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"}, {"CriOS/", "Chrome"},
		{"Version/", "Safari"}, // Safari puts its own version there
	} {
		if v, ok := majorVersion(ua, b.token); ok {
			browser = b.name + " " + v
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		// iPhones say "like Mac OS X", Android says Linux.
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"CrOS", "ChromeOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			return browser + " on " + o.name
		}
	}
	return browser
}

// majorVersion returns the major version that follows token in ua
// ("Firefox/128.0" → "128"), and whether token is there with a number.
func majorVersion(ua, token string) (string, bool) {
	_, rest, ok := strings.Cut(ua, token)
	if !ok {
		return "", false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	if end == 0 || end > 6 {
		return "", false
	}
	return rest[:end], true
}

// ago says how long before now t was, for people: "just now",
// "5 minutes ago", "3 hours ago", "yesterday", "12 days ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return count(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return count(int(d/time.Hour), "hour") + " ago"
	case d < 48*time.Hour:
		return "yesterday"
	default:
		return count(int(d/(24*time.Hour)), "day") + " ago"
	}
}

// count writes n of unit: "1 minute", "3 minutes".
func count(n int, unit string) string {
	return strconv.Itoa(n) + " " + plural(n, unit, unit+"s")
}

// when formats a time for the sessions page: "2 Dec 2025, 05:54 UTC".
func when(t time.Time) string {
	return t.UTC().Format("2 Jan 2006, 15:04 MST")
}
