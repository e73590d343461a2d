package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

// CSRF protection without server-side state: a signed double-submit
// cookie. The first page a browser loads gets a random token in a cookie
// of its own; every form on the page carries the same token in a hidden
// field, and every POST must send both, equal, with a signature made with
// the shop's key. A page from another site can make the browser post a
// form, and the browser adds the cookie, but that page cannot read the
// token to put it in the form.
//
// Nothing is stored: a visitor who only looks costs no store write, and
// the session is created by the first change that needs one, such as
// adding to the cart.
//
// The signature covers who the token was issued to (the logged-in user's
// name, or nobody) and when. So a token issued to someone else, or before
// login, never passes for a logged-in user, even if an attacker manages to
// plant their own cookie in the victim's browser; and every token expires
// after csrfLifetime. Login and logout issue a new token.

// maxFormBytes bounds the body of a form post; the shop's forms are tiny.
const maxFormBytes = 16 << 10

// csrfLifetime is how long a token is accepted after it was issued, and
// how long its cookie lasts: as long as an idle session of the shop, which
// uses ginsession's default lifetime.
const csrfLifetime = ginsession.DefaultLifetime

// Token layout, before base64url: the issue time (8 bytes, Unix seconds,
// big-endian), 32 random bytes, then the HMAC-SHA256 of those 40 bytes and
// of the user name.
const (
	csrfStampLen = 8
	csrfNonceLen = 32
	csrfBodyLen  = csrfStampLen + csrfNonceLen
	csrfRawLen   = csrfBodyLen + sha256.Size
)

// csrfTokenLen is the length of a token as sent.
var csrfTokenLen = base64.RawURLEncoding.EncodedLen(csrfRawLen)

// csrfKeyLen is the least length of the shop's secret.
const csrfKeyLen = 32

// errShortSecret says the configured secret is too short to sign with.
var errShortSecret = errors.New("the secret must be at least 32 bytes")

// csrfContextKey caches the token of the current request in the gin
// context, so that a page renders one token and sets at most one cookie.
const csrfContextKey = "shop.csrf"

// A csrfGuard issues and checks the shop's CSRF tokens.
type csrfGuard struct {
	key    []byte // derived from the shop's secret; signs the tokens
	cookie string // "__Host-csrf" over HTTPS, "csrf" otherwise
	secure bool
	now    func() time.Time
}

// newCSRFGuard returns a guard whose key is derived from secret, or is
// random for this process if secret is nil. secure says whether the shop
// is served over HTTPS.
func newCSRFGuard(secret []byte, secure bool) (*csrfGuard, error) {
	if secret == nil {
		secret = make([]byte, csrfKeyLen)
		rand.Read(secret) // never fails; crashes the program if the OS cannot supply randomness
	}
	if len(secret) < csrfKeyLen {
		return nil, errShortSecret
	}
	// A key of its own, so that the secret can sign other things too
	// without one signature ever standing in for another.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("gopher-goods csrf key v1"))
	g := &csrfGuard{key: m.Sum(nil), cookie: "csrf", secure: secure, now: time.Now}
	if secure {
		// The prefix makes browsers refuse the cookie unless it is
		// Secure, has Path=/ and no Domain: a neighbouring subdomain
		// cannot plant one.
		g.cookie = "__Host-csrf"
	}
	return g, nil
}

// sum returns the signature of a token's body for user.
func (g *csrfGuard) sum(body []byte, user string) []byte {
	m := hmac.New(sha256.New, g.key)
	m.Write(body)
	m.Write([]byte(user)) // last, after a fixed-length body: unambiguous
	return m.Sum(nil)
}

// issue returns a new token for user.
func (g *csrfGuard) issue(user string) string {
	raw := make([]byte, csrfBodyLen, csrfRawLen)
	binary.BigEndian.PutUint64(raw, uint64(g.now().Unix()))
	rand.Read(raw[csrfStampLen:])
	raw = append(raw, g.sum(raw, user)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// valid reports whether tok is a token this shop issued to user and has
// not expired.
func (g *csrfGuard) valid(tok, user string) bool {
	if len(tok) != csrfTokenLen {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != csrfRawLen {
		return false
	}
	body, mac := raw[:csrfBodyLen], raw[csrfBodyLen:]
	if !hmac.Equal(mac, g.sum(body, user)) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(body)), 0)
	age := g.now().Sub(issued)
	return age > -time.Minute && age < csrfLifetime // a minute's grace for clocks between instances
}

// cookieToken returns the token in the request's CSRF cookie, or "".
func (g *csrfGuard) cookieToken(c *gin.Context) string {
	ck, err := c.Request.Cookie(g.cookie)
	if err != nil {
		return ""
	}
	return ck.Value
}

// token returns the token for the page being rendered: the browser's own
// if it is still valid for the visitor, a new one in a new cookie if not.
func (g *csrfGuard) token(c *gin.Context) string {
	if tok := c.GetString(csrfContextKey); tok != "" {
		return tok
	}
	tok := g.cookieToken(c)
	if !g.valid(tok, currentUser(c)) {
		tok = g.issue(currentUser(c))
		g.setCookie(c, tok)
	}
	c.Set(csrfContextKey, tok)
	return tok
}

// rotate gives the browser a new token for user, after a login or a
// logout changed who the visitor is.
func (g *csrfGuard) rotate(c *gin.Context, user string) {
	tok := g.issue(user)
	g.setCookie(c, tok)
	c.Set(csrfContextKey, tok)
}

// setCookie sends the token's cookie. Nothing is stored on the server.
// The response carries a token meant for this browser only, so no cache
// may keep it: no-store, whatever the handler says later.
func (g *csrfGuard) setCookie(c *gin.Context, tok string) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     g.cookie,
		Value:    tok,
		Path:     "/",
		MaxAge:   int(csrfLifetime / time.Second),
		Secure:   g.secure,
		HttpOnly: true, // the forms get the token from the server; no script needs it
		SameSite: http.SameSiteLaxMode,
	})
	c.Header("Cache-Control", "no-store")
}

// checkCSRF is the middleware in front of every POST route. It reads the form
// (at most maxFormBytes) and answers 403 unless its "csrf" field equals
// the CSRF cookie, compared in constant time, and the token is one this
// shop issued to the visitor.
func (s *server) checkCSRF(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		s.renderError(c, http.StatusBadRequest, "That form could not be read.")
		c.Abort()
		return
	}
	got := c.Request.PostForm.Get("csrf")
	want := s.csrf.cookieToken(c)
	if got == "" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 ||
		!s.csrf.valid(want, currentUser(c)) {
		s.log.Warn("form rejected: missing or wrong CSRF token", "path", c.Request.URL.Path,
			"sent", got != "", "cookie", want != "")
		s.renderError(c, http.StatusForbidden,
			"This form has expired or did not come from this shop, so nothing was changed. Go back, reload the page and try again.")
		c.Abort()
		return
	}
	c.Next()
}
