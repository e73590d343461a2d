package sharedcache

import (
	"reflect"
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		lines []string
		want  directives
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{" , ,"}, nil},
		{[]string{"Public, MAX-AGE=60"}, directives{{name: "public"}, {name: "max-age", value: "60", hasValue: true}}},
		{[]string{"no-store", "s-maxage=5"}, directives{{name: "no-store"}, {name: "s-maxage", value: "5", hasValue: true}}},
		{[]string{`no-cache="Set-Cookie, X-User", private`}, directives{{name: "no-cache", value: "Set-Cookie, X-User", hasValue: true}, {name: "private"}}},
		{[]string{`ext="a \"b\", c", max-age = 7`}, directives{{name: "ext", value: `a "b", c`, hasValue: true}, {name: "max-age", value: "7", hasValue: true}}},
		{[]string{"max-age=60 junk, public"}, directives{{name: "max-age", value: "60", hasValue: true}, {name: "public"}}},
		{[]string{`private="unterminated, public`}, directives{{name: "private", value: "unterminated, public", hasValue: true}}},
		{[]string{"=5, no-cache="}, directives{{name: "no-cache", hasValue: true}}},
	} {
		if got := parseCacheControl(tt.lines); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCacheControl(%q) = %+v, want %+v", tt.lines, got, tt.want)
		}
	}
}

func TestDelta(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cc             string
		secs           int64
		present, valid bool
	}{
		{"public", 0, false, false},
		{"max-age=0", 0, true, true},
		{"max-age=60", 60, true, true},
		{`max-age="60"`, 60, true, true},
		{"max-age=99999999999999999999", maxDelta, true, true},
		{"max-age=-1", 0, true, false},
		{"max-age=1.5", 0, true, false},
		{"max-age", 0, true, false},
		{"max-age=", 0, true, false},
		{"max-age=1, max-age=1", 0, true, false},
	} {
		secs, present, valid := parseCacheControl([]string{tt.cc}).delta("max-age")
		if secs != tt.secs || present != tt.present || valid != tt.valid {
			t.Errorf("%q: delta = %d, %v, %v; want %d, %v, %v", tt.cc, secs, present, valid, tt.secs, tt.present, tt.valid)
		}
	}
}

func TestFields(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cc          string
		unqualified bool
		names       []string
	}{
		{"public", false, nil},
		{"no-cache", true, nil},
		{`no-cache="set-cookie, x-user"`, false, []string{"Set-Cookie", "X-User"}},
		{"no-cache=Set-Cookie, no-cache", true, []string{"Set-Cookie"}},
		{`no-cache=""`, false, nil},
	} {
		unqualified, names := parseCacheControl([]string{tt.cc}).fields("no-cache")
		if unqualified != tt.unqualified || !reflect.DeepEqual(names, tt.names) {
			t.Errorf("%q: fields = %v, %q; want %v, %q", tt.cc, unqualified, names, tt.unqualified, tt.names)
		}
	}
}
