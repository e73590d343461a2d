package sharedcache

import (
	"net/textproto"
	"strings"
)

// maxDelta is the value a cache must use for a delta-seconds value it cannot
// represent (RFC 9111 §1.2.2).
const maxDelta = 2147483648

// directive is one Cache-Control directive (RFC 9111 §5.2).
type directive struct {
	name     string // lower case: directive names are case-insensitive
	value    string // unquoted argument; "" when there is none
	hasValue bool
}

// directives is a parsed Cache-Control field, every field line in order.
type directives []directive

// parseCacheControl parses the lines of a Cache-Control field:
//
//	Cache-Control   = #cache-directive
//	cache-directive = token [ "=" ( token / quoted-string ) ]
//
// It is lenient the way caches are: whitespace around "=" is tolerated, empty
// list members are skipped, and anything after a directive up to the next
// comma is ignored.
func parseCacheControl(lines []string) directives {
	var ds directives
	for _, s := range lines {
		i := 0
		for i < len(s) {
			if c := s[i]; c == ' ' || c == '\t' || c == ',' {
				i++
				continue
			}
			start := i
			for i < len(s) && !strings.ContainsRune("=, \t", rune(s[i])) {
				i++
			}
			d := directive{name: strings.ToLower(s[start:i])}
			j := skipOWS(s, i)
			if j < len(s) && s[j] == '=' {
				d.hasValue = true
				i = skipOWS(s, j+1)
				if i < len(s) && s[i] == '"' {
					var b strings.Builder
					for i++; i < len(s); i++ {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						} else if s[i] == '"' {
							i++
							break
						}
						b.WriteByte(s[i])
					}
					d.value = b.String()
				} else {
					start = i
					for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
						i++
					}
					d.value = s[start:i]
				}
			}
			for i < len(s) && s[i] != ',' {
				i++
			}
			if d.name != "" {
				ds = append(ds, d)
			}
		}
	}
	return ds
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// has reports whether the directive name is present, with or without an
// argument.
func (ds directives) has(name string) bool {
	for _, d := range ds {
		if d.name == name {
			return true
		}
	}
	return false
}

// delta returns the delta-seconds argument of the directive name (RFC 9111
// §1.2.2). present reports whether the directive appears at all; valid is
// false when it appears more than once or its argument is not delta-seconds,
// in which case RFC 9111 §4.2.1 lets the cache consider the response stale,
// and this cache does. A value too large to represent is 2147483648.
func (ds directives) delta(name string) (secs int64, present, valid bool) {
	n := 0
	var arg string
	for _, d := range ds {
		if d.name == name {
			n++
			arg = d.value
		}
	}
	if n == 0 {
		return 0, false, false
	}
	if n > 1 {
		return 0, true, false
	}
	secs, valid = parseDelta(arg)
	return secs, true, valid
}

// parseDelta parses delta-seconds (RFC 9111 §1.2.2): one or more digits, a
// value too large to represent being 2147483648.
func parseDelta(s string) (secs int64, ok bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if secs = secs*10 + int64(c-'0'); secs > maxDelta {
			secs = maxDelta
		}
	}
	return secs, true
}

// fields returns, for a directive that takes an optional list of field names
// (no-cache and private, RFC 9111 §5.2.2.4 and §5.2.2.7), whether its
// unqualified form is present and the canonical names listed by its qualified
// forms. The quoted-string form is the one senders must use; the token form
// (private=Set-Cookie) is accepted too.
func (ds directives) fields(name string) (unqualified bool, names []string) {
	for _, d := range ds {
		if d.name != name {
			continue
		}
		if !d.hasValue {
			unqualified = true
			continue
		}
		for _, f := range strings.Split(d.value, ",") {
			if f = strings.TrimSpace(f); f != "" {
				names = append(names, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	return unqualified, names
}
