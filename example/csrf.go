package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

// CSRF protection: each session holds a random token (key "csrf"), every
// form carries it in a hidden field, and every POST must send it back.
// A page from another site cannot read the token, so it cannot forge a
// form that passes. The token is replaced at login, together with the
// session ID.

// maxFormBytes bounds the body of a form post; the shop's forms are tiny.
const maxFormBytes = 16 << 10

// newToken returns 32 random bytes, base64url-encoded.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails; crashes the program if the OS cannot supply randomness
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfToken returns the session's token, creating it on first use.
func csrfToken(c *gin.Context) string {
	if tok, ok := ginsession.Get[string](c, keyCSRF); ok && tok != "" {
		return tok
	}
	fresh := newToken()
	// Update rather than Set: if a concurrent first page view of this
	// session stored a token first, keep that one, so neither page's
	// forms go stale.
	ginsession.Update(c, keyCSRF, func(old string) string {
		if old != "" {
			return old
		}
		return fresh
	})
	tok, _ := ginsession.Get[string](c, keyCSRF)
	return tok
}

// checkCSRF is the middleware in front of every POST route. It reads the
// form (at most maxFormBytes) and answers 403 unless its "csrf" field
// matches the session's token.
func (s *server) checkCSRF(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		s.renderError(c, http.StatusBadRequest, "That form could not be read.")
		c.Abort()
		return
	}
	want, _ := ginsession.Get[string](c, keyCSRF)
	got := c.Request.PostForm.Get("csrf")
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		s.log.Warn("form rejected: missing or wrong CSRF token", "path", c.Request.URL.Path, "sent", got != "")
		s.renderError(c, http.StatusForbidden,
			"This form has expired or did not come from this shop, so nothing was changed. Go back, reload the page and try again.")
		c.Abort()
		return
	}
	c.Next()
}
