package sessions

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memstore"
)

// Types stored in the tests: user is registered, plain is not.
type (
	user struct {
		Name  string
		Age   int
		Tags  []string
		Prefs map[string]bool
	}
	plain struct {
		A int
		B string
	}
	role  string
	count int
	key   string // a key type of its own, as gin-contrib users declare
)

func init() {
	Register(user{})
}

var when = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

// valueCases are values as Set, and what Get returns for each, in the
// request that set it and in later ones.
var valueCases = []struct {
	name    string
	in, out any
}{
	{"int", 42, 42},
	{"negative int", -7, -7},
	{"int8", int8(-8), int8(-8)},
	{"int16", int16(1600), int16(1600)},
	{"int32", int32(-320000), int32(-320000)},
	{"int64", int64(1) << 40, int64(1) << 40},
	{"uint", uint(7), uint(7)},
	{"uint8", uint8(255), uint8(255)},
	{"uint16", uint16(65535), uint16(65535)},
	{"uint32", uint32(1) << 31, uint32(1) << 31},
	{"uint64", uint64(1) << 63, uint64(1) << 63},
	{"float32", float32(1.5), float32(1.5)},
	{"float64", 3.25, 3.25},
	{"bool", true, true},
	{"string", "héllo", "héllo"},
	{"empty string", "", ""},
	{"[]byte", []byte{0, 1, 2, 255}, []byte{0, 1, 2, 255}},
	{"time.Time", when, when},
	{"time.Duration", 90 * time.Second, 90 * time.Second},
	{"[]string", []string{"a", "b"}, []string{"a", "b"}},
	{"[]int", []int{1, 2, 3}, []int{1, 2, 3}},
	{"[2]int", [2]int{4, 5}, [2]int{4, 5}},
	{"*int", new(int), new(int)},
	{"map[string]string", map[string]string{"a": "b"}, map[string]string{"a": "b"}},
	{"map[string]int", map[string]int{"a": 1}, map[string]int{"a": 1}},
	{"map[int]string", map[int]string{1: "a"}, map[int]string{1: "a"}},
	{"[]map[string][]int", []map[string][]int{{"x": {1}}}, []map[string][]int{{"x": {1}}}},
	{"[]any", []any{1, "a", true, []string{"x"}, nil, 2.5}, []any{1, "a", true, []string{"x"}, nil, 2.5}},
	{
		"map[string]any",
		map[string]any{"n": 1, "u": uint8(2), "l": []any{int64(3), map[string]any{"d": time.Minute}}, "user": user{Name: "ann"}},
		map[string]any{"n": 1, "u": uint8(2), "l": []any{int64(3), map[string]any{"d": time.Minute}}, "user": user{Name: "ann"}},
	},
	{"gin.H", gin.H{"id": 7, "name": "ann"}, gin.H{"id": 7, "name": "ann"}},
	{"nil []any", []any(nil), []any(nil)},
	{"nil []string", []string(nil), []string(nil)},
	{"nil map[string]any", map[string]any(nil), map[string]any(nil)},
	{"nil *registered struct", (*user)(nil), (*user)(nil)},
	{
		"registered struct",
		user{Name: "ann", Age: 33, Tags: []string{"admin"}, Prefs: map[string]bool{"dark": true}},
		user{Name: "ann", Age: 33, Tags: []string{"admin"}, Prefs: map[string]bool{"dark": true}},
	},
	{"*registered struct", &user{Name: "bob"}, &user{Name: "bob"}},
	{"[]registered struct", []user{{Name: "a"}, {Name: "b"}}, []user{{Name: "a"}, {Name: "b"}}},
	{"map[string]registered struct", map[string]user{"x": {Age: 1}}, map[string]user{"x": {Age: 1}}},
	{"unregistered struct", plain{A: 1, B: "x"}, map[string]any{"A": int64(1), "B": "x"}},
	{"[]unregistered struct", []plain{{A: 2}}, []any{map[string]any{"A": int64(2), "B": ""}}},
	{"unregistered named string", role("admin"), "admin"},
	{"unregistered named int", count(3), int64(3)},
	{"nil", nil, nil},
}

// sameValue reports whether got is want: of the same type and equal
// (time.Time: the same instant).
func sameValue(got, want any) bool {
	if w, ok := want.(time.Time); ok {
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	}
	return reflect.DeepEqual(got, want)
}

// TestValueTypes checks that every kind of value reads back as the
// package documentation says, in the request that set it and in the
// next one.
func TestValueTypes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		opts, _ := b.options(t)
		r := gin.New()
		r.Use(Sessions(sessionName, opts))
		r.GET("/set", func(c *gin.Context) {
			s := Default(c)
			for i, tc := range valueCases {
				s.Set(i, tc.in)
				if got := s.Get(i); !sameValue(got, tc.out) {
					t.Errorf("%s, same request: Get = %#v (%T), want %#v (%T)", tc.name, got, got, tc.out, tc.out)
				}
			}
			s.Set("keep", 1) // the session is never empty
			saveOK(t, s)
			c.String(200, ok)
		})
		r.GET("/get", func(c *gin.Context) {
			s := Default(c)
			for i, tc := range valueCases {
				if got := s.Get(i); !sameValue(got, tc.out) {
					t.Errorf("%s, next request: Get = %#v (%T), want %#v (%T)", tc.name, got, got, tc.out, tc.out)
				}
			}
			c.String(200, ok)
		})
		br := newBrowser(t, r)
		br.get("/set")
		br.get("/get")
	})
}

// TestValuesOfGinsessionAccessors: a value stored with ginsession.Set,
// without a type name, reads back in its generic form.
func TestValuesOfGinsessionAccessors(t *testing.T) {
	r := gin.New()
	r.Use(Sessions(sessionName, ginsession.Options{Store: memstore.New()}))
	r.GET("/", func(c *gin.Context) {
		ginsession.Set(c, "n", 5)
		ginsession.Set(c, "l", []string{"a"})
		s := Default(c)
		if got := s.Get("n"); got != int64(5) {
			t.Errorf("Get(n) = %#v, want int64(5)", got)
		}
		if got := s.Get("l"); !reflect.DeepEqual(got, []any{"a"}) {
			t.Errorf("Get(l) = %#v, want []any{\"a\"}", got)
		}
		c.String(200, ok)
	})
	newBrowser(t, r).get("/")
}

// TestKeys checks the mapping of keys: string keys as they are, other
// keys by type and value, and no two keys meet.
func TestKeys(t *testing.T) {
	keys := []any{"1", 1, int64(1), uint(1), 1.0, key("1"), "\x001", "\x011", true, "true", [2]int{1, 2}, plain{A: 1}}
	r := gin.New()
	r.Use(Sessions(sessionName, ginsession.Options{Store: memstore.New()}))
	r.GET("/set", func(c *gin.Context) {
		s := Default(c)
		for i, k := range keys {
			s.Set(k, i)
		}
		saveOK(t, s)
		if got := ginsession.Keys(c); len(got) != len(keys) {
			t.Errorf("%d keys stored, want %d: %q", len(got), len(keys), got)
		}
		if !contains(ginsession.Keys(c), "1") || !contains(ginsession.Keys(c), "true") {
			t.Errorf("string keys not stored as they are: %q", ginsession.Keys(c))
		}
		c.String(200, ok)
	})
	r.GET("/get", func(c *gin.Context) {
		s := Default(c)
		for i, k := range keys {
			if got := s.Get(k); got != i {
				t.Errorf("Get(%#v) = %#v, want %d", k, got, i)
			}
		}
		c.String(200, ok)
	})
	br := newBrowser(t, r)
	br.get("/set")
	br.get("/get")

	for _, tc := range []struct {
		in   any
		want string
	}{
		{"user", "user"},
		{"", ""},
		{"\x00x", "\x01\x00x"},
		{"\x01x", "\x01\x01x"},
		{1, "\x01int:1"},
		{key("a"), "\x01sessions.key:\"a\""},
	} {
		if got := keyString(tc.in); got != tc.want {
			t.Errorf("keyString(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestTypeNames checks that typeName and parseType agree, and that
// parseType refuses names it must not build.
func TestTypeNames(t *testing.T) {
	for _, v := range []any{
		0, "", []byte(nil), [3]uint16{}, map[[2]int][]*string{}, map[string]map[int8][]any{},
		(*[]map[string]user)(nil), time.Time{}, []time.Duration{}, gin.H{}, map[time.Duration]int{}, map[any]int{},
	} {
		typ := reflect.TypeOf(v)
		name, ok := typeName(typ)
		if !ok {
			t.Errorf("typeName(%v) failed", typ)
			continue
		}
		if got, ok := parseType(name); !ok || got != typ {
			t.Errorf("parseType(%q) = %v, %v; want %v", name, got, ok, typ)
		}
	}
	for _, v := range []any{plain{}, []plain{}, struct{}{}, make(chan int), func() {}, map[string]fmt.Stringer{}, [1 << 17]bool{}, role("")} {
		if name, ok := typeName(reflect.TypeOf(v)); ok {
			t.Errorf("typeName(%T) = %q; want none", v, name)
		}
	}
	for _, name := range []string{
		"", "nil", "[]", "*", "map[", "map[]int", "map[string", "map[[]int]string", "map[map[int]int]int",
		"[-1]int", "[65537]int", "[x]int", "[1int", "complex128", "error", "main.Unknown",
		strings.Repeat("*", 40) + "int", strings.Repeat("[]", maxTypeName) + "int",
	} {
		if typ, ok := parseType(name); ok {
			t.Errorf("parseType(%q) = %v; want none", name, typ)
		}
	}
}

// A type stored under an old name, registered again with RegisterName.
type renamed struct{ N int }

// TestRegisterName: a value stored by another program (or another
// version of this one) under a type name reads as the type registered
// under that name, and in its generic form when no type is.
func TestRegisterName(t *testing.T) {
	unknown := value{T: "example.com/never.Registered"}
	unknown.V, _ = ginsession.Msgpack.Marshal(renamed{N: 4})
	if got := unknown.decode(); !reflect.DeepEqual(got, map[string]any{"N": int64(4)}) {
		t.Errorf("unknown type: decode = %#v, want its generic form", got)
	}
	old := value{T: "example.com/old.Thing", V: unknown.V}
	RegisterName("example.com/old.Thing", renamed{})
	if got := old.decode(); got != (renamed{N: 4}) {
		t.Errorf("after RegisterName: decode = %#v, want renamed{4}", got)
	}
	list := value{T: "[]example.com/old.Thing"}
	list.V, _ = ginsession.Msgpack.Marshal([]renamed{{1}})
	if got := list.decode(); !reflect.DeepEqual(got, []renamed{{1}}) {
		t.Errorf("decode = %#v, want []renamed{{1}}", got)
	}
	// A stored value that does not fit the registered type: generic form.
	bad := value{T: "example.com/old.Thing"}
	bad.V, _ = ginsession.Msgpack.Marshal("text")
	if got := bad.decode(); got != "text" {
		t.Errorf("decode of a mismatched value = %#v, want \"text\"", got)
	}
}

func TestRegisterPanics(t *testing.T) {
	Register([]string{})         // needs no registration
	Register(map[string]any{})   // nor this
	Register(&user{})            // registered already: the same name again
	RegisterName("x.Renamed", 0) // a predeclared type needs no name
	for i, f := range []func(){
		func() { Register(nil) },
		func() { Register(struct{ A int }{}) },
		func() { Register([]plain{}) }, // built from an unregistered type
		func() { Register(func() {}) },
		func() { RegisterName("", plain{}) },
		func() { RegisterName("int", plain{}) },
		func() { RegisterName("[]x", plain{}) },
		func() { RegisterName("map[x]y", plain{}) },
		func() { RegisterName("example.com/old.Thing", plain{}) }, // taken by renamed
		func() { RegisterName("example.com/other", user{}) },      // user has its name
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: no panic", i)
				}
			}()
			f()
		}()
	}
}

// TestNestingBounded: a value nested deeper than the limit is refused at
// Set, and Save says so.
func TestNestingBounded(t *testing.T) {
	var deep any = "leaf"
	for range maxTypeDepth + 1 {
		deep = []any{deep}
	}
	r := gin.New()
	r.Use(Sessions(sessionName, ginsession.Options{Store: memstore.New()}))
	r.GET("/", func(c *gin.Context) {
		s := Default(c)
		s.Set("deep", deep)
		if err := s.Save(); err == nil || !strings.Contains(err.Error(), strconv.Itoa(maxTypeDepth)) {
			t.Errorf("Save = %v, want the nesting error", err)
		}
		c.String(200, ok)
	})
	newBrowser(t, r).get("/")
}
