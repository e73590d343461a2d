package ginsession

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/memstore"
)

// hugeDepth is how deep the hostile values below nest: decoded, they
// would need more than a goroutine's 1 GB of stack, a fatal error that no
// recover catches. Other shapes are tried at bigDepth, which used to cost
// tens of megabytes of stack.
const (
	hugeDepth = 4 << 20
	bigDepth  = 100_000
)

// depthList nests once per node in a type of its own: decoding it goes
// through reflection, the path that costs the most stack per level.
type depthList struct{ Next *depthList }

func newDepthList(depth int) *depthList {
	l := &depthList{}
	for range depth - 1 {
		l = &depthList{Next: l}
	}
	return l
}

func (l *depthList) len() int {
	n := 0
	for ; l != nil; l = l.Next {
		n++
	}
	return n
}

// nestedArrays returns a []any depth levels deep.
func nestedArrays(depth int) any {
	v := any([]any{})
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

// nestedMaps returns a map[string]any depth levels deep.
func nestedMaps(depth int) any {
	v := any(map[string]any{})
	for range depth - 1 {
		v = map[string]any{"k": v}
	}
	return v
}

// A depthShape is one way to nest a value, written out without
// recursion: depth-1 opens, a leaf one level deep, and depth-1 ends.
type depthShape struct {
	name               string
	kind               string // what it decodes into: "array", "map", "list", or "" for nothing
	open, leaf, end    string // msgpack
	jOpen, jLeaf, jEnd string // JSON, when the shape has one
}

var depthShapes = []depthShape{
	{"fixarray", "array", "\x91", "\x90", "", "[", "[]", "]"},
	{"array16", "array", "\xdc\x00\x01", "\xdc\x00\x00", "", "[ ", "[ ]", " ]"},
	{"array32", "array", "\xdd\x00\x00\x00\x01", "\xdd\x00\x00\x00\x00", "", "", "", ""},
	{"fixmap", "map", "\x81\xa1k", "\x80", "", `{"k":`, "{}", "}"},
	{"map16", "map", "\xde\x00\x01\xa1k", "\xde\x00\x00", "", `{"[{\"\\": `, "{}", "}"},
	{"map32", "map", "\xdf\x00\x00\x00\x01\xa1k", "\x80", "", "", "", ""},
	{"map key", "", "\x81", "\x80", "\x01", "", "", ""}, // each map is the key of the one around it
	{"list", "list", "\x81\xa4Next", "\x81\xa4Next\xc0", "", `{"Next":`, `{"Next":null}`, "}"},
}

func (n depthShape) msgpack(depth int) []byte {
	return nestBytes(depth, n.open, n.leaf, n.end)
}

func (n depthShape) json(depth int) []byte {
	if n.jOpen == "" {
		return nil
	}
	return nestBytes(depth, n.jOpen, n.jLeaf, n.jEnd)
}

func nestBytes(depth int, open, leaf, end string) []byte {
	n := (depth - 1) * len(open)
	b := make([]byte, n+len(leaf)+(depth-1)*len(end))
	fillRepeat(b[:n], open)
	copy(b[n:], leaf)
	fillRepeat(b[n+len(leaf):], end)
	return b
}

// fillRepeat fills b with copies of s.
func fillRepeat(b []byte, s string) {
	if len(s) == 0 {
		return
	}
	for i := copy(b, s); i < len(b); i *= 2 {
		copy(b[i:], b[:i])
	}
}

// depthCodecs are the built-in depthCodecs, with how they write a value nested
// depth levels deep in each shape (nil if they have no such shape).
var depthCodecs = []struct {
	name  string
	codec Codec
	nest  func(depthShape, int) []byte
}{
	{"Msgpack", Msgpack, depthShape.msgpack},
	{"JSON", JSON, depthShape.json},
}

// depthTargets returns pointers to decode a nested value of kind into; all of
// them for kind "all".
func depthTargets(kind string) []any {
	a, s, m, l := new(any), new([]any), new(map[string]any), new(depthList)
	switch kind {
	case "array":
		return []any{a, s}
	case "map":
		return []any{a, m}
	case "list":
		return []any{a, m, l}
	case "all":
		return []any{a, s, m, l}
	}
	return nil
}

// TestDeepValueRejected checks that a value nested millions of levels
// deep, which used to kill the process when decoded, is an error.
func TestDeepValueRejected(t *testing.T) {
	for _, c := range depthCodecs {
		for _, n := range depthShapes {
			depth := bigDepth
			if n.name == "fixarray" {
				depth = hugeDepth
			}
			data := c.nest(n, depth)
			if data == nil {
				continue
			}
			for _, v := range depthTargets("all") {
				if err := c.codec.Unmarshal(data, v); !errors.Is(err, errTooDeep) {
					t.Errorf("%s %s: decoding %d levels into %T: %v, want errTooDeep", c.name, n.name, depth, v, err)
				}
			}
		}
	}
	// Deep bytes a custom encoder writes are not stored either.
	if _, err := Msgpack.Marshal(rawMsgpack(depthShapes[0].msgpack(hugeDepth))); !errors.Is(err, errTooDeep) {
		t.Errorf("Marshal of a raw value %d deep: %v, want errTooDeep", hugeDepth, err)
	}
}

// rawMsgpack encodes as the msgpack bytes it holds.
type rawMsgpack []byte

func (r rawMsgpack) MarshalMsgpack() ([]byte, error) { return r, nil }

// TestDepthLimit checks the limit itself: MaxDepth levels encode and
// decode to the same value, in every shape and into every type, and one
// more level is refused by Marshal and by Unmarshal.
func TestDepthLimit(t *testing.T) {
	for _, c := range depthCodecs {
		for _, v := range []struct {
			name  string
			value func(depth int) any
		}{
			{"arrays", nestedArrays},
			{"maps", nestedMaps},
			{"list", func(d int) any { return newDepthList(d) }},
			{"arrays after a deep sibling", func(d int) any { return []any{nestedArrays(d - 1), "x", nestedArrays(d - 1)} }},
			{"maps after a deep sibling", func(d int) any { return map[string]any{"a": nestedMaps(d - 1), "b": nestedArrays(d - 1)} }},
		} {
			at, err := c.codec.Marshal(v.value(MaxDepth))
			if err != nil {
				t.Errorf("%s %s: Marshal at MaxDepth: %v", c.name, v.name, err)
				continue
			}
			want := reflect.New(reflect.TypeOf(v.value(1)))
			if err := c.codec.Unmarshal(at, want.Interface()); err != nil {
				t.Errorf("%s %s: Unmarshal at MaxDepth: %v", c.name, v.name, err)
			} else if got := want.Elem().Interface(); !reflect.DeepEqual(got, v.value(MaxDepth)) {
				t.Errorf("%s %s: at MaxDepth, decoded another value", c.name, v.name)
			}
			var a any
			if err := c.codec.Unmarshal(at, &a); err != nil {
				t.Errorf("%s %s: Unmarshal at MaxDepth into any: %v", c.name, v.name, err)
			}
			if _, err := c.codec.Marshal(v.value(MaxDepth + 1)); !errors.Is(err, errTooDeep) {
				t.Errorf("%s %s: Marshal at MaxDepth+1: %v, want errTooDeep", c.name, v.name, err)
			}
		}
		for _, n := range depthShapes {
			at, over := c.nest(n, MaxDepth), c.nest(n, MaxDepth+1)
			if at == nil {
				continue
			}
			for _, v := range depthTargets(n.kind) {
				if err := c.codec.Unmarshal(at, v); err != nil {
					t.Errorf("%s %s: %d levels into %T: %v", c.name, n.name, MaxDepth, v, err)
				}
				if err := c.codec.Unmarshal(over, v); !errors.Is(err, errTooDeep) {
					t.Errorf("%s %s: %d levels into %T: %v, want errTooDeep", c.name, n.name, MaxDepth+1, v, err)
				}
			}
			if l := new(depthList); n.kind == "list" && (c.codec.Unmarshal(at, l) != nil || l.len() != MaxDepth) {
				t.Errorf("%s: a list of MaxDepth decoded to %d nodes", c.name, l.len())
			}
		}
	}
	for _, n := range depthShapes {
		if err := checkMsgpack(n.msgpack(MaxDepth)); err != nil {
			t.Errorf("checkMsgpack, %s %d deep: %v", n.name, MaxDepth, err)
		}
		if err := checkMsgpack(n.msgpack(MaxDepth + 1)); !errors.Is(err, errTooDeep) {
			t.Errorf("checkMsgpack, %s %d deep: %v, want errTooDeep", n.name, MaxDepth+1, err)
		}
	}
	// A deep branch after a popped one counts from where it starts.
	over := append([]byte{0x92}, depthShapes[0].msgpack(MaxDepth-1)...)
	over = append(over, depthShapes[0].msgpack(MaxDepth)...)
	if err := checkMsgpack(over); !errors.Is(err, errTooDeep) {
		t.Errorf("second branch %d deep: %v, want errTooDeep", MaxDepth+1, err)
	}
	if err := checkMsgpack(over[:len(over)-2]); err == nil || errors.Is(err, errTooDeep) {
		t.Errorf("truncated: %v, want a malformed value", err)
	}
}

// TestJSONDepthScan checks that the JSON depth scan sees brackets in
// strings, escaped quotes included, as text.
func TestJSONDepthScan(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	for _, s := range []string{deep, `"` + deep + `"`, `\"[`, `\\`, `"\\"[]`, "{\"[\\\\\": [\"]\"]}"} {
		v := []any{s, map[string]any{s: s}}
		data, err := JSON.Marshal(v)
		if err != nil {
			t.Errorf("Marshal %.60q: %v", s, err)
			continue
		}
		var got any
		if err := JSON.Unmarshal(data, &got); err != nil || !reflect.DeepEqual(got, any(v)) {
			t.Errorf("%.60s: decoded %.60v, %v", data, got, err)
		}
	}
	for _, s := range []string{" [ ", "\t{\"a\" :", "[\"]\\\"\",", "[\"\\\\\",", "{\"\\u005d\":"} {
		over := strings.Repeat(s, MaxDepth+1)
		if err := checkJSONDepth([]byte(over)); !errors.Is(err, errTooDeep) {
			t.Errorf("%q × %d: %v, want errTooDeep", s, MaxDepth+1, err)
		}
		if err := checkJSONDepth([]byte(strings.Repeat(s, MaxDepth))); err != nil {
			t.Errorf("%q × %d: %v", s, MaxDepth, err)
		}
	}
}

// TestDeepStoredValue reads a hostile value through the middleware: Get
// finds no value, Update starts from the zero value, the rest of the
// session is intact, and Set refuses a value too deep to read back.
func TestDeepStoredValue(t *testing.T) {
	t.Parallel()
	for _, c := range depthCodecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := memstore.New()
			a := newApp(t, Options{Store: st, Codec: c.codec})
			a.GET("/any", func(c *gin.Context) {
				v, ok := Get[any](c, c.Query("k"))
				c.String(http.StatusOK, "%v %v", v, ok)
			})
			a.POST("/update", func(c *gin.Context) {
				err := Update(c, "deep", func(v any) any {
					if v != nil {
						c.Header("X-Old", "not the zero value")
					}
					return "replaced"
				})
				c.String(http.StatusOK, "%v", err)
			})
			a.POST("/set-deep", func(c *gin.Context) {
				c.String(http.StatusOK, "%v", Set(c, "k2", nestedArrays(MaxDepth+1)))
			})
			a.GET("/flashes-any", func(c *gin.Context) {
				c.String(http.StatusOK, "%v", Flashes[any](c))
			})
			deep := c.nest(depthShapes[0], hugeDepth)
			x, _ := c.codec.Marshal("x")
			flash, _ := c.codec.Marshal("hello")
			id := newID()
			payload := encodePayload(time.Now().UnixNano(), map[string][]byte{"deep": deep, "k": x, flashKey: packList([][]byte{deep, flash})})
			if _, err := st.Save(context.Background(), a.cfg.prefix+id, payload, 0, time.Hour); err != nil {
				t.Fatal(err)
			}
			br := newBrowser(t, a)
			br.setCookie(id)
			wantBody(t, br.do("GET", "/any?k=deep"), 200, "<nil> false")
			wantBody(t, br.do("GET", "/get"), 200, "x true")
			wantBody(t, br.do("GET", "/flashes-any"), 200, "[hello]")
			rec := br.do("POST", "/update")
			wantBody(t, rec, 200, "<nil>")
			if old := rec.Header().Get("X-Old"); old != "" {
				t.Errorf("Update's function got %s", old)
			}
			wantBody(t, br.do("GET", "/any?k=deep"), 200, "replaced true")
			rec = br.do("POST", "/set-deep")
			if !strings.Contains(rec.Body.String(), errTooDeep.Error()) {
				t.Errorf("Set of a value MaxDepth+1 deep: %q, want errTooDeep", rec.Body.String())
			}
			if errs := a.drainErrs(); len(errs) != 0 {
				t.Errorf("errors %v", errs)
			}
		})
	}
}

// TestSameValueDeep checks the change check on two hostile values that
// differ only in order: it must decode neither.
func TestSameValueDeep(t *testing.T) {
	deep := depthShapes[0].msgpack(hugeDepth)
	a := append(append([]byte{0x92}, deep...), 0xc3)
	b := append([]byte{0x92, 0xc3}, deep...)
	cfg := newConfig(Options{Logger: quiet})
	if cfg.sameValue(a, b) {
		t.Error("two undecodable values found the same")
	}
}

// TestDepthStackCost measures the stack a goroutine grows to when it
// decodes a value MaxDepth deep, and the bytes each level costs. Go grows
// stacks by doubling, so it looks for the depths at which the stack first
// reaches half that size and that size: between them, a quarter of it
// was used.
func TestDepthStackCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement only")
	}
	for _, c := range depthCodecs {
		for _, target := range []struct {
			name  string
			shape depthShape
			into  func() any
		}{
			{"any", depthShapes[0], func() any { return new(any) }},
			{"depthList", depthShapes[len(depthShapes)-1], func() any { return new(depthList) }},
		} {
			used := func(depth int) int64 {
				data := c.nest(target.shape, depth)
				return stackGrowth(func() {
					if err := c.codec.Unmarshal(data, target.into()); err != nil {
						t.Errorf("%s into %s, %d deep: %v", c.name, target.name, depth, err)
					}
				})
			}
			// first returns the least depth at which the stack reaches size.
			first := func(size int64) int {
				lo, hi := 0, MaxDepth // used(lo) < size <= used(hi)
				for hi-lo > 1 {
					if mid := (lo + hi) / 2; used(mid) < size {
						lo = mid
					} else {
						hi = mid
					}
				}
				return hi
			}
			top := used(MaxDepth)
			full, half := first(top), first(top/2)
			if half >= full {
				t.Logf("%s into %s: %d KiB of stack at MaxDepth (%d)", c.name, target.name, top>>10, MaxDepth)
				continue
			}
			t.Logf("%s into %s: %d KiB of stack at MaxDepth (%d), about %d bytes per level",
				c.name, target.name, top>>10, MaxDepth, top/4/int64(full-half))
		}
	}
}

// stackGrowth runs fn on a new goroutine and returns how much the stacks
// in use grew by the time it finished.
func stackGrowth(fn func()) int64 {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // a GC would shrink the stack
	goroutines := runtime.NumGoroutine()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done, exit := make(chan struct{}), make(chan struct{})
	go func() {
		fn()
		close(done)
		<-exit
	}()
	<-done
	runtime.ReadMemStats(&after)
	close(exit)
	for runtime.NumGoroutine() > goroutines { // its stack freed, not in the next measurement
		runtime.Gosched()
	}
	return int64(after.StackInuse) - int64(before.StackInuse)
}

// benchCart is an ordinary session value: a struct holding a slice of
// structs, three levels deep.
type benchCart struct {
	Items   []benchItem
	Coupon  string
	Updated time.Time
}

type benchItem struct {
	SKU   string
	Qty   int
	Price float64
}

func newBenchCart() benchCart {
	c := benchCart{Coupon: "SPRING", Updated: time.Unix(1700000000, 0).UTC()}
	for i := range 5 {
		c.Items = append(c.Items, benchItem{SKU: "sku-" + string(rune('a'+i)), Qty: i + 1, Price: 9.99})
	}
	return c
}

// BenchmarkCheckMsgpack measures the walk that runs before every msgpack
// decode, on ordinary values, and on a cart of 50 items, which is long
// enough (1.6 kB) to get the depth check.
func BenchmarkCheckMsgpack(b *testing.B) {
	cart50 := newBenchCart()
	for range 45 {
		cart50.Items = append(cart50.Items, cart50.Items[0])
	}
	for _, v := range []struct {
		name  string
		value any
	}{{"int", 42}, {"string", "hello, world"}, {"cart", newBenchCart()}, {"map", map[string]any{"a": []any{1, map[string]any{"b": []int{2}}}}}, {"cart50", cart50}} {
		data, err := Msgpack.Marshal(v.value)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := checkMsgpack(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMsgpack and BenchmarkJSON measure each codec on an ordinary
// value, into its own type and into any.
func BenchmarkMsgpack(b *testing.B) { benchCodec(b, Msgpack) }
func BenchmarkJSON(b *testing.B)    { benchCodec(b, JSON) }

func benchCodec(b *testing.B, codec Codec) {
	cart := newBenchCart()
	data, err := codec.Marshal(cart)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Marshal(cart); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal/struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v benchCart
			if err := codec.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal/any", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := codec.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal/int", func(b *testing.B) {
		n, _ := codec.Marshal(12345)
		b.ReportAllocs()
		for b.Loop() {
			var v int
			if err := codec.Unmarshal(n, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
