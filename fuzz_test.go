package ginsession

import (
	"bytes"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

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

// FuzzCheckMsgpack checks the length check on any bytes: no panic, and a
// value it accepts is exactly one value, so none of its prefixes passes.
func FuzzCheckMsgpack(f *testing.F) {
	for _, v := range []any{1, "s", []any{1, "x"}, map[string]any{"a": map[string]int{"b": 2}}, []byte("bin")} {
		enc, _ := Msgpack.Marshal(v)
		f.Add(enc)
	}
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkMsgpack(data) != nil {
			return
		}
		for i := range data {
			if checkMsgpack(data[:i]) == nil {
				t.Fatalf("%x accepted, and so is its prefix %x", data, data[:i])
			}
		}
	})
}
