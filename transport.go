package ginsession

import (
	"net/http"
	"strings"
	"time"
)

// The session ID travels in a cookie, or, with Options.Header, in a
// request header for API clients that keep no cookies: this file holds
// what differs between the two carriers. Either way the value is the ID,
// signed when SigningKeys are set, and never read from the query string.
//
// With a header, a response carries the header only when the ID is new or
// changed (a first write, Regenerate, Login), and carries it empty when the
// session ended (Destroy, or emptied): the client then drops its token.
// "Authorization" means "Authorization: Bearer <token>" both ways.

// idFromRequest returns the session ID the request carries, or "".
func (cfg *config) idFromRequest(r *http.Request) string {
	if cfg.header == "" {
		return cfg.idFromCookies(r)
	}
	v := r.Header.Get(cfg.header)
	if cfg.bearer {
		scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		v = token
	}
	return parseCookie(strings.TrimSpace(v), cfg.keys)
}

// idName is what carries the ID: the cookie's name, or the header's.
func (cfg *config) idName() string {
	if cfg.header != "" {
		return cfg.header
	}
	return cfg.cookieName
}

// sendID puts the session's ID in the response, to last ttl. s.mu is held.
func (s *session) sendID(ttl time.Duration, now time.Time) {
	if s.cfg.header != "" {
		v := s.cfg.cookieValue(s.id)
		if s.cfg.bearer {
			v = "Bearer " + v
		}
		s.w.ResponseWriter.Header().Set(s.cfg.header, v)
		s.idSent = true
		return
	}
	suffix, persistent := s.cookieAttrs()
	s.setCookie(s.cfg.setCookieHeader(s.id, ttl, now, suffix, persistent))
}

// dropID tells the client to forget its ID. s.mu is held.
func (s *session) dropID(now time.Time) {
	if s.cfg.header != "" {
		s.w.ResponseWriter.Header().Set(s.cfg.header, "")
		s.idSent = true
		return
	}
	suffix := s.cfg.cookieSuffix
	if s.expireSuffix != "" { // the attributes the browser's cookie was set with
		suffix = s.expireSuffix
	}
	s.setCookie(s.cfg.setCookieHeader("", 0, now, suffix, false))
}
