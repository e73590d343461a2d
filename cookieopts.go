package ginsession

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// cookieKey holds the session's own cookie attributes, set with
// SetCookieOptions, packed with packList: flags, Path, Domain.
const cookieKey = "\x00cookie"

// Flags of a session's cookie options.
const (
	optSecure = 1 << iota
	optScriptReadable
	optPartitioned
	optBrowserSession
)

// ErrCookieOptions reports cookie options that SetCookieOptions cannot
// use, such as SameSite=None without Secure, which browsers reject.
var ErrCookieOptions = errors.New("ginsession: invalid cookie options")

// SetCookieOptions gives this session's cookie its own attributes, instead
// of those of Options.Cookie: Path, Domain, Secure, ScriptReadable,
// SameSite, Partitioned and BrowserSession (o.Name must be empty or the
// middleware's cookie name). They are kept in the session, so every later
// response that sends its cookie uses them too, and they survive
// Regenerate; Clear and Destroy drop them, and the cookie is then expired
// with the attributes it was set with, provided the session was loaded
// (Destroy alone does not load it: read it first). The cookie is sent
// again in this response. Options a browser would reject return an error wrapping
// ErrCookieOptions, and nothing changes.
//
// Changing Path or Domain leaves the browser's cookie with the old ones in
// place until it expires; the browser then sends both, and the first valid
// one wins.
func SetCookieOptions(c *gin.Context, o CookieOptions) error {
	s := from(c)
	if s.cfg.header != "" {
		return fmt.Errorf("%w: the session ID travels in the %s header, not a cookie", ErrCookieOptions, s.cfg.header)
	}
	if o.Name != "" && o.Name != s.cfg.cookieName {
		return fmt.Errorf("%w: the name %q is not this session's cookie %q", ErrCookieOptions, o.Name, s.cfg.cookieName)
	}
	if _, err := cookieSuffix(s.cfg.cookieName, o); err != nil {
		return fmt.Errorf("%w: %w", ErrCookieOptions, err)
	}
	var flags byte
	if o.Secure {
		flags |= optSecure
	}
	if o.ScriptReadable {
		flags |= optScriptReadable
	}
	if o.Partitioned {
		flags |= optPartitioned
	}
	if o.BrowserSession {
		flags |= optBrowserSession
	}
	raw := packList([][]byte{{flags, byte(o.SameSite)}, []byte(o.Path), []byte(o.Domain)})
	if err := s.changeOrFail(op{kind: opSet, key: cookieKey, raw: raw}); err != nil {
		return err
	}
	s.mu.Lock()
	s.sendCookie = true
	s.mu.Unlock()
	return nil
}

// cookieOptions decodes what SetCookieOptions stored.
func cookieOptions(raw []byte) (CookieOptions, bool) {
	items, err := unpackList(raw)
	if err != nil || len(items) != 3 || len(items[0]) != 2 {
		return CookieOptions{}, false
	}
	flags := items[0][0]
	return CookieOptions{
		Path:           string(items[1]),
		Domain:         string(items[2]),
		Secure:         flags&optSecure != 0,
		ScriptReadable: flags&optScriptReadable != 0,
		Partitioned:    flags&optPartitioned != 0,
		BrowserSession: flags&optBrowserSession != 0,
		SameSite:       http.SameSite(items[0][1]),
	}, true
}

// hasCookieOptions reports whether the session has cookie options of its
// own. s.mu is held.
func (s *session) hasCookieOptions() bool {
	_, ok := s.value(cookieKey)
	if !ok {
		_, ok = s.value(rememberKey)
	}
	return ok
}

// cookieAttrs returns the attributes of the session's cookie, and whether
// it is persistent. s.mu is held.
func (s *session) cookieAttrs() (suffix string, persistent bool) {
	suffix, persistent = s.cfg.cookieSuffix, s.cfg.persistent
	if raw, ok := s.value(cookieKey); ok {
		if o, ok := cookieOptions(raw); ok {
			if own, err := cookieSuffix(s.cfg.cookieName, o); err == nil {
				suffix, persistent = own, !o.BrowserSession
			}
		}
	}
	if remember, ok := s.remembered(); ok {
		persistent = remember
	}
	return suffix, persistent
}

// keepExpirySuffix remembers the attributes of the cookie the browser
// holds, before the options that set them are dropped. s.mu is held.
func (s *session) keepExpirySuffix() {
	if s.stored && s.hasCookieOptions() {
		s.expireSuffix, _ = s.cookieAttrs()
	}
}

// Named returns a context through which the accessors use the session of
// the middleware whose cookie (or Options.Header) is named name, for a
// request that passes through several ginsession middlewares (the
// accessors on c itself use the one installed last, nearest the handler).
// It panics if no middleware on the request has that name.
func Named(c *gin.Context, name string) *gin.Context {
	inner := from(c)
	for s := inner; s != nil; s = s.outer {
		if s.cfg.idName() != name {
			continue
		}
		if s == inner {
			return c
		}
		cp := c.Copy()
		cp.Set(contextKey{}, s)
		return cp
	}
	panic(fmt.Sprintf("ginsession: no session middleware with the cookie or header %q on this request", name))
}

// Commit saves the session's changes now instead of just before the
// response, and returns what the store said: nil, or an error wrapping
// ErrUnavailable, ErrTooManyConflicts or ErrTooLarge. The handler takes the
// error: the ErrorHandler is not called. Changes made afterwards are
// committed at the end as usual. Most handlers never need it; it is for
// code that must know a change is stored before it goes on.
func Commit(c *gin.Context) error {
	s := from(c)
	if !s.active.Load() {
		return nil // never touched: nothing to commit
	}
	s.mu.Lock()
	defer s.mu.Unlock() // an Update replayed on conflict may panic
	if s.done.Load() {
		return ErrRequestDone
	}
	return s.commitLocked()
}
