package ginsession

import (
	"net/http"
	"strings"
)

// Responses and shared caches (RFC 9111).
//
// A response whose handler used the session depends on what carries the
// session ID, so it gets "Vary: Cookie" (or Vary on Options.Header): a cache that stores it serves it
// only to requests with the same Cookie header. That is not enough for a
// response that carries the middleware's Set-Cookie (a new or renewed ID,
// or the order to drop one; likewise the ID header): a shared cache that stored it would hand the
// ID to every later visitor with the same cookies, which includes everyone
// who has none. Such a response gets "Cache-Control: private" (RFC 9111
// §5.2.2.7: a shared cache MUST NOT store it), and loses "public" and
// "s-maxage", which only concern shared caches and would contradict it.
// The handler's other directives stay, so the browser's own cache still
// does what the handler asked.

// cacheHeaders sets the headers above on h, which has not been sent yet.
// s.mu is held.
func (s *session) cacheHeaders(h http.Header) {
	if s.cfg.disabled {
		return // no cookie is read or sent
	}
	if s.cfg.header != "" {
		addVary(h, s.cfg.header)
	} else {
		addVary(h, "Cookie")
	}
	if s.sessionData != nil && (s.cookieIdx >= 0 || s.idSent) {
		privateOnly(h)
	}
}

// addVary adds name to h's Vary header unless it, or "*", is there.
func addVary(h http.Header, name string) {
	lines := h["Vary"]
	for _, line := range lines {
		for line != "" {
			var field string
			field, line, _ = strings.Cut(line, ",")
			field = strings.TrimSpace(field)
			if field == "*" || strings.EqualFold(field, name) {
				return
			}
		}
	}
	if len(lines) == 0 {
		if name == "Cookie" {
			h["Vary"] = varyCookie[:1:1] // shared: an append copies it
			return
		}
		h["Vary"] = []string{name}
		return
	}
	h["Vary"] = append(lines, name)
}

// Header lines the middleware sets on most responses, shared so that
// setting them allocates nothing. Header.Set and Header.Add replace or copy
// a line slice whose capacity is full; nothing writes into one in place.
var (
	varyCookie   = []string{"Cookie"}
	cachePrivate = []string{"private"}
)

// privateOnly makes the Cache-Control header of h forbid shared caches to
// store the response, keeping the directives that concern the browser's
// cache.
func privateOnly(h http.Header) {
	lines := h["Cache-Control"]
	switch {
	case len(lines) == 0:
		h["Cache-Control"] = cachePrivate[:1:1]
		return
	case len(lines) == 1 && lines[0] == "private":
		return
	}
	kept := []string{"private"}
	for _, line := range lines {
		for _, d := range splitDirectives(line) {
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "public", "s-maxage", "private", "":
				continue
			}
			kept = append(kept, d)
		}
	}
	h["Cache-Control"] = []string{strings.Join(kept, ", ")}
}

// splitDirectives splits a Cache-Control line at the commas that are not
// inside a quoted string, trimming each directive.
func splitDirectives(line string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			quoted = !quoted
		case '\\':
			if quoted {
				i++
			}
		case ',':
			if !quoted {
				out = append(out, strings.TrimSpace(line[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(line[start:]))
}
