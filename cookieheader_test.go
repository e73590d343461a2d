package ginsession

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// hostileCookieHeader returns a Cookie header of about size bytes made of
// session cookies that are well formed but badly signed, then good.
func hostileCookieHeader(name string, size int, good string) string {
	var b strings.Builder
	bad := sign(newID(), []byte(strings.Repeat("x", 32)))
	for b.Len() < size {
		b.WriteString(name + "=" + bad + "; ")
	}
	b.WriteString(name + "=" + good)
	return b.String()
}

// TestSessionCookiesBounded checks that only the first maxSessionCookies
// cookies with the session's name are examined, the first valid one wins,
// and other cookies in between do not count.
func TestSessionCookiesBounded(t *testing.T) {
	t.Parallel()
	keys := [][]byte{[]byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32)), []byte(strings.Repeat("c", 32))}
	cfg := newConfig(Options{SigningKeys: keys, Logger: quiet})
	id, other := newID(), newID()
	good, second := sign(id, keys[0]), sign(other, keys[1])
	bad := sign(newID(), []byte(strings.Repeat("x", 32)))
	repeat := func(s string, n int) string { return strings.Repeat(s+"; ", n) }
	for _, tc := range []struct {
		name   string
		header []string
		want   string
	}{
		{"one", []string{"session=" + good}, id},
		{"first valid wins", []string{"session=" + good + "; session=" + second}, id},
		{"after bad ones", []string{repeat("session="+bad, maxSessionCookies-1) + "session=" + second}, other},
		{"other names do not count", []string{repeat("theme=dark", 1000) + repeat("session="+bad, 3) + "session=" + good}, id},
		{"across header lines", []string{"session=" + bad, "session=" + bad, "x=1; session=" + good}, id},
		{"past the bound", []string{repeat("session="+bad, maxSessionCookies) + "session=" + good}, ""},
		{"past the bound, across lines", []string{repeat("session="+bad, maxSessionCookies), "session=" + good}, ""},
		{"a megabyte of them", []string{hostileCookieHeader("session", 1<<20, good)}, ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = tc.header
		if got := cfg.idFromRequest(r); got != tc.want {
			t.Errorf("%s: got ID %q, want %q", tc.name, got, tc.want)
		}
	}
}

// BenchmarkHostileCookieHeader measures a request's cookie parsing with a
// 1 MB Cookie header of badly signed session cookies and three signing
// keys, against one of as many cookies with other names.
func BenchmarkHostileCookieHeader(b *testing.B) {
	keys := [][]byte{[]byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32)), []byte(strings.Repeat("c", 32))}
	cfg := newConfig(Options{SigningKeys: keys, Logger: quiet})
	for _, name := range []string{"session", "other"} {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", hostileCookieHeader(name, 1<<20, "x"))
			b.ReportAllocs()
			for b.Loop() {
				if cfg.idFromRequest(r) != "" {
					b.Fatal("adopted an ID")
				}
			}
		})
	}
}
