package ginsession

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/ginsession/ginsession/store/memstore"
)

var fuzzKey = []byte(strings.Repeat("f", 32))

// FuzzParseCookie checks that no cookie value makes the parser panic, and
// that whatever it accepts is an ID this package could have issued.
func FuzzParseCookie(f *testing.F) {
	id := newID()
	for _, seed := range []string{"", id, sign(id, fuzzKey), id + ".", strings.Repeat("A", 87), sign(id, fuzzKey)[:86] + "=", "\xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if got := parseCookie(value, nil); got != "" {
			if got != value || len(got) != idLen || !isIDText(got) {
				t.Fatalf("unsigned %q accepted as %q", value, got)
			}
		}
		if got := parseCookie(value, [][]byte{fuzzKey}); got != "" {
			if sign(got, fuzzKey) != value {
				t.Fatalf("signed %q accepted as %q without a valid signature", value, got)
			}
		}
	})
}

// FuzzDecodePayload checks that no stored payload makes the decoder
// panic, and that what it decodes encodes back to the same session.
func FuzzDecodePayload(f *testing.F) {
	f.Add(encodePayload(1700000000, map[string][]byte{"cart": {0x92, 1, 2}, "user": []byte("ann")}))
	f.Add(encodePayload(0, nil))
	f.Add([]byte{payloadV1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2})
	if doc, ok := encodeJSONDoc(1700000000_000000000, []byte("12345678"), map[string][]byte{"cart": []byte("[1,2]"), flashKey: {1, 2, 'h', 'i'}}); ok {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		created, values, err := decodePayload(data)
		// The lazy path must accept exactly what the full decoder accepts
		// and find the same values.
		scanCreated, n, lazy, scanErr := scanPayload(data)
		if lazy && (err != nil) != (scanErr != nil) {
			t.Fatalf("scanPayload error %v, decodePayload error %v", scanErr, err)
		}
		if lazy && err == nil {
			if scanCreated != created || n != len(values) {
				t.Fatalf("scanPayload: created %d, %d values; decodePayload: %d, %d", scanCreated, n, created, len(values))
			}
			for k, v := range values {
				if got, ok := payloadValue(data, k); !ok || !bytes.Equal(got, v) {
					t.Fatalf("payloadValue(%q) = %q, %v; want %q", k, got, ok, v)
				}
			}
		}
		if err != nil {
			if scanErr == nil && lazy {
				t.Fatal("scanPayload accepted a payload decodePayload rejects")
			}
			return
		}
		again, values2, err := decodePayload(encodePayload(created, values))
		if err != nil || again != created || !maps.EqualFunc(values, values2, bytes.Equal) {
			t.Fatalf("re-encoding changed the session: %v", err)
		}
	})
}

// FuzzUnpackList checks the flash-queue decoder the same way.
func FuzzUnpackList(f *testing.F) {
	f.Add(packList([][]byte{[]byte("a"), {}, []byte("ccc")}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := unpackList(data)
		if err != nil {
			return
		}
		again, err := unpackList(packList(items))
		if err != nil || len(again) != len(items) {
			t.Fatalf("re-packing changed the list: %v", err)
		}
		for i := range items {
			if !bytes.Equal(items[i], again[i]) {
				t.Fatalf("item %d changed", i)
			}
		}
	})
}

// FuzzCookieHeader drives the whole middleware with arbitrary Cookie
// headers: every request must get a normal answer and a fresh session.
func FuzzCookieHeader(f *testing.F) {
	f.Add("session=" + newID())
	f.Add("session=; session=" + sign(newID(), fuzzKey))
	f.Add("session=\"quoted\"; other=1")
	st := memstore.New()
	r := gin.New()
	r.Use(New(Options{Store: st, SigningKeys: [][]byte{fuzzKey}, Logger: quiet}))
	r.GET("/", func(c *gin.Context) {
		if _, ok := Get[string](c, "k"); ok {
			c.Header("X-Loaded", "yes")
		}
		Set(c, "k", "v")
		c.String(http.StatusOK, "ok")
	})
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", header)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Header().Get("X-Loaded") != "" {
			t.Fatalf("Cookie %q loaded a session", header)
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for Cookie %q", rec.Code, header)
		}
		c := rec.Result().Cookies()
		if len(c) != 1 || parseCookie(c[0].Value, [][]byte{fuzzKey}) == "" || strings.Contains(header, c[0].Value[:idLen]) {
			t.Fatalf("no fresh session for Cookie %q", header)
		}
	})
}

// FuzzSameValue feeds the change check stored bytes it did not encode: it
// must not panic, must not care about the order of its arguments, and
// must find every value equal to itself and to its map entries reordered.
func FuzzSameValue(f *testing.F) {
	f.Add([]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02}, []byte{0x82, 0xa1, 'b', 0x02, 0xa1, 'a', 0x01})
	f.Add([]byte{0x82, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01}, []byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, []byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x91, 0xc1}, []byte{0xc1, 0x91})
	deep := bytes.Repeat([]byte{0x91}, MaxDepth+1)
	f.Add(append(append([]byte{0x92}, deep...), 0x90, 0xc3), append([]byte{0x92, 0xc3}, append(deep, 0x90)...)) // too deep to compare
	cfg := newConfig(Options{Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) > 0 && !cfg.sameValue(a, a) {
			t.Fatalf("%x is not the same as itself", a)
		}
		if cfg.sameValue(a, b) != cfg.sameValue(b, a) {
			t.Fatalf("sameValue(%x, %x) depends on the order", a, b)
		}
		var v any
		if Msgpack.Unmarshal(a, &v) != nil {
			return
		}
		if m, ok := v.(map[string]any); ok {
			// Re-encoded (in some order), the map is still the same value.
			again, err := Msgpack.Marshal(m)
			if err == nil && len(again) == len(a) && !cfg.sameValue(a, again) {
				t.Fatalf("%x and its re-encoding %x differ", a, again)
			}
		}
	})
}

// FuzzCheckMsgpack checks the length and depth checks on any bytes: no
// panic; a value accepted is exactly one value, so none of its prefixes
// passes, and is one the msgpack package reads as one value no deeper
// than MaxDepth; a value found too deep is too deep for that package too;
// an accepted value nested in arrays up to MaxDepth in all is still
// accepted, one more level is not; and checkMsgpack's check of short
// values, which skips the depth, agrees with checkMsgpackDepth on
// everything else.
func FuzzCheckMsgpack(f *testing.F) {
	for _, v := range []any{1, "s", []any{1, "x"}, map[string]any{"a": map[string]int{"b": 2}}, []byte("bin")} {
		enc, _ := Msgpack.Marshal(v)
		f.Add(enc)
	}
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(append(bytes.Repeat([]byte{0x91}, MaxDepth-1), 0x90))
	f.Add(append(bytes.Repeat([]byte{0x81, 0xa1, 'k', 0x91}, MaxDepth/2), 0xc0))
	f.Add(append(bytes.Repeat([]byte{0x92, 0x90}, MaxDepth), 0xc0))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkMsgpackDepth(data)
		if got := checkMsgpack(data); got != err && !errors.Is(err, errTooDeep) {
			t.Fatalf("%x: checkMsgpack %v, checkMsgpackDepth %v", data, got, err)
		}
		if err != nil && !errors.Is(err, errTooDeep) {
			return
		}
		r := bytes.NewReader(data)
		depth, refErr := msgpackDepth(msgpack.NewDecoder(r), 0)
		if err != nil {
			if !errors.Is(refErr, errTooDeep) {
				t.Fatalf("%x rejected as too deep; msgpack finds depth %d, %v", data, depth, refErr)
			}
			return
		}
		if refErr != nil || r.Len() != 0 {
			t.Fatalf("%x accepted; msgpack finds %v, %d bytes after the value", data, refErr, r.Len())
		}
		for i := range data {
			if checkMsgpack(data[:i]) == nil || checkMsgpackDepth(data[:i]) == nil {
				t.Fatalf("%x accepted, and so is its prefix %x", data, data[:i])
			}
		}
		wrapped := append(bytes.Repeat([]byte{0x91}, MaxDepth-depth), data...)
		if err := checkMsgpack(wrapped); err != nil {
			t.Fatalf("%x, %d deep, rejected nested %d levels deeper: %v", data, depth, MaxDepth-depth, err)
		}
		if err := checkMsgpack(append([]byte{0x91}, wrapped...)); !errors.Is(err, errTooDeep) {
			t.Fatalf("%x, %d deep, nested %d levels deeper: %v, want errTooDeep", data, depth, MaxDepth-depth+1, err)
		}
	})
}

// msgpackDepth is how deep the msgpack value d reads next nests, read
// with the msgpack package and level maps and arrays around it; or
// errTooDeep past MaxDepth, so that it recurses at most that deep.
func msgpackDepth(d *msgpack.Decoder, level int) (int, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err = d.DecodeMapLen()
		n *= 2
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = d.DecodeArrayLen()
	default:
		return level, d.Skip()
	}
	if err != nil {
		return 0, err
	}
	if level == MaxDepth {
		return 0, errTooDeep
	}
	deepest := level + 1
	for range n {
		depth, err := msgpackDepth(d, level+1)
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, depth)
	}
	return deepest, nil
}

// FuzzJSONDepth checks the JSON depth scan on any bytes: no panic; on
// valid JSON it rejects exactly what nests deeper than MaxDepth, as
// counted by encoding/json's tokenizer, and otherwise leaves the decoding
// to encoding/json; and a value nested in arrays up to MaxDepth in all
// is still accepted, one more level is not.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`1`, `[]`, `{"a":[1,{"b":"[\"]"}]}`, `"\\"`, `[{"\u005b":"\\["}]`, `"[`, `["]`,
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
		strings.Repeat(`{"a":[`, MaxDepth/2) + strings.Repeat("]}", MaxDepth/2),
		strings.Repeat(`["[",`, MaxDepth+1) + "0" + strings.Repeat("]", MaxDepth+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkJSONDepth(data)
		var v, w any
		jerr, stdErr := JSON.Unmarshal(data, &v), json.Unmarshal(data, &w)
		if !json.Valid(data) {
			if jerr == nil {
				t.Fatalf("invalid %q decoded", data)
			}
			return
		}
		depth := jsonDepth(data)
		if (err == nil) != (depth <= MaxDepth) {
			t.Fatalf("%q is %d deep; checkJSONDepth: %v", data, depth, err)
		}
		if err != nil {
			if !errors.Is(jerr, errTooDeep) {
				t.Fatalf("%q is %d deep; Unmarshal: %v", data, depth, jerr)
			}
			return
		}
		if (jerr == nil) != (stdErr == nil) {
			t.Fatalf("%q: Unmarshal %v, json.Unmarshal %v", data, jerr, stdErr)
		}
		k := MaxDepth - depth
		wrapped := strings.Repeat("[", k) + string(data) + strings.Repeat("]", k)
		if err := checkJSONDepth([]byte(wrapped)); err != nil {
			t.Fatalf("%q, %d deep, rejected nested %d levels deeper: %v", data, depth, k, err)
		}
		if err := JSON.Unmarshal([]byte("["+wrapped+"]"), &v); !errors.Is(err, errTooDeep) {
			t.Fatalf("%q, %d deep, nested %d levels deeper: %v, want errTooDeep", data, depth, k+1, err)
		}
	})
}

// jsonDepth is how deep valid JSON nests, counted with encoding/json's
// tokenizer.
func jsonDepth(data []byte) int {
	d := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}
