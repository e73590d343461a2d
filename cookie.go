package ginsession

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// A session ID is 32 bytes from crypto/rand, base64url-encoded without
// padding. With signing keys the cookie value is the ID, a dot, and the
// base64url HMAC-SHA256 of the ID under the first key.
const (
	idBytes   = 32
	idLen     = 43 // base64.RawURLEncoding.EncodedLen(idBytes)
	signedLen = idLen + 1 + 43
)

// newID returns a fresh session ID.
func newID() string {
	var b [idBytes]byte
	rand.Read(b[:]) // never fails; crashes the program if the OS cannot supply randomness
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sign returns the cookie value for id under key.
func sign(id string, key []byte) string {
	var sum [sha256.Size]byte
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	buf := make([]byte, signedLen)
	copy(buf, id)
	buf[idLen] = '.'
	base64.RawURLEncoding.Encode(buf[idLen+1:], mac.Sum(sum[:0]))
	return string(buf)
}

// parseCookie returns the session ID carried by a cookie value, or "" if
// the value is not one this middleware could have issued: wrong length,
// wrong alphabet, or a signature no key verifies. It never panics and does
// not allocate for an unsigned value.
func parseCookie(value string, keys [][]byte) string {
	if len(keys) == 0 {
		if len(value) != idLen || !isIDText(value) {
			return ""
		}
		return value
	}
	if len(value) != signedLen || value[idLen] != '.' || !isIDText(value[:idLen]) {
		return ""
	}
	id := value[:idLen]
	var want [sha256.Size]byte
	if n, err := base64.RawURLEncoding.Decode(want[:], []byte(value[idLen+1:])); err != nil || n != sha256.Size {
		return ""
	}
	var sum [sha256.Size]byte
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(id))
		if hmac.Equal(mac.Sum(sum[:0]), want[:]) {
			return id
		}
	}
	return ""
}

// isIDText reports whether s uses only the base64url alphabet.
func isIDText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cookieValue is the value to send for id.
func (cfg *config) cookieValue(id string) string {
	if len(cfg.keys) == 0 {
		return id
	}
	return sign(id, cfg.keys[0])
}

// maxSessionCookies is how many cookies with the session cookie's name a
// request may carry for the middleware to look at: the first ones, in the
// order of the Cookie header. A browser sends the cookie of the longest
// Path first and, among equal paths, the oldest first; more than one means
// a stale Path or Domain, or cookies planted by a sibling subdomain
// ("cookie tossing"), which the __Host- name prefix rules out. Any more are
// ignored, so that a hostile Cookie header costs at most this many
// signature checks.
const maxSessionCookies = 4

// idFromCookies returns the first valid session ID among the first
// maxSessionCookies cookies with the configured name, or "". It splits the
// Cookie headers as net/http's Request.CookiesNamed does, quotes included,
// but without allocating: the ID is a substring of the header.
func (cfg *config) idFromCookies(r *http.Request) string {
	seen := 0
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, value, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(name) != cfg.cookieName {
				continue
			}
			if seen++; seen > maxSessionCookies {
				return ""
			}
			if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if id := parseCookie(value, cfg.keys); id != "" {
				return id
			}
		}
	}
	return ""
}

// setCookieHeader builds the Set-Cookie header value for id, valid for
// maxAge, with the attributes suffix, and Max-Age and Expires if
// persistent. An empty id, or maxAge <= 0, expires the cookie.
func (cfg *config) setCookieHeader(id string, maxAge time.Duration, now time.Time, suffix string, persistent bool) string {
	b := make([]byte, 0, 200)
	b = append(b, cfg.cookieName...)
	b = append(b, '=')
	if id == "" || maxAge <= 0 {
		b = append(b, "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"...)
	} else {
		b = append(b, cfg.cookieValue(id)...)
		if persistent {
			b = append(b, cfg.expiryAttrs(now.Unix(), int64((maxAge+time.Second-1)/time.Second))...)
		}
	}
	b = append(b, suffix...)
	return string(b)
}

// expiryAttrs is the "; Max-Age=…; Expires=…" part of a Set-Cookie line,
// as built for one second and one Max-Age.
type expiryAttrs struct {
	unix, secs int64
	text       string
}

// expiryAttrs returns the attributes of a cookie sent at Unix time unix to
// last secs seconds. A busy server sends the same ones many times a
// second, so the last ones built are kept: formatting the date is most of
// the cost of a Set-Cookie line.
func (cfg *config) expiryAttrs(unix, secs int64) string {
	if a := cfg.expiry.Load(); a != nil && a.unix == unix && a.secs == secs {
		return a.text
	}
	b := make([]byte, 0, 64)
	b = append(b, "; Max-Age="...)
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, "; Expires="...)
	b = time.Unix(unix+secs, 0).UTC().AppendFormat(b, http.TimeFormat)
	a := &expiryAttrs{unix: unix, secs: secs, text: string(b)}
	cfg.expiry.Store(a)
	return a.text
}
