package ginsession

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/memstore"
)

// TestJSONDocument checks that with the JSON codec a stored session is a
// JSON document that encoding/json alone can read, that it works like any
// other session (reads, conflicts replayed, flashes), and that entries in
// the binary format still read.
func TestJSONDocument(t *testing.T) {
	t.Parallel()
	type item struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	st := &echoing{Store: memstore.New()}
	a := newApp(t, Options{Store: st, Codec: JSON})
	a.POST("/fill", func(c *gin.Context) {
		Set(c, "user", "ann")
		Set(c, "items", []item{{"mug", 2}})
		AddFlash(c, "welcome")
		c.Status(http.StatusNoContent)
	})
	br := newBrowser(t, a)
	br.do("POST", "/fill")
	st.armed.Store(1) // the next commit's write is applied but answered as a conflict
	br.do("POST", "/add?item=a")

	data, _, err := a.raw(t, st, br.cookie())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Format   int                        `json:"ginsession"`
		Created  time.Time                  `json:"created"`
		Marks    []string                   `json:"marks"`
		Values   map[string]json.RawMessage `json:"values"`
		Internal map[string][]byte          `json:"internal"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("stored entry is not JSON: %v\n%s", err, data)
	}
	if doc.Format != 1 || time.Since(doc.Created) > time.Minute || len(doc.Marks) != 2 {
		t.Fatalf("document header: %+v", doc)
	}
	var items []item
	var cart []string
	if json.Unmarshal(doc.Values["items"], &items) != nil || len(items) != 1 || items[0].Qty != 2 ||
		string(doc.Values["user"]) != `"ann"` || json.Unmarshal(doc.Values["cart"], &cart) != nil || len(cart) != 1 {
		t.Fatalf("values: %s", data)
	}
	if _, ok := doc.Internal["flash"]; !ok {
		t.Fatalf("no flash queue in %s", data)
	}
	wantBody(t, br.do("GET", "/flashes"), 200, "welcome")
	wantBody(t, br.do("GET", "/cart"), 200, "a")

	// A binary entry still reads, and is written back as a document.
	old := encodePayload(time.Now().UnixNano(), map[string][]byte{"k": []byte(`"binary"`)})
	id := newID()
	if _, err := st.Store.Save(context.Background(), a.cfg.prefix+id, old, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	b2 := newBrowser(t, a)
	b2.setCookie(id)
	wantBody(t, b2.do("GET", "/get"), 200, "binary true")
	b2.do("POST", "/set?k=k2&v=x")
	if data, _, _ := a.raw(t, st, id); !isJSONDoc(data) {
		t.Fatalf("rewritten as %q", data)
	}

	// A value that is not JSON (stored with msgpack before the codec
	// changed) keeps the session in the binary format.
	mp, _ := Msgpack.Marshal("msgpack")
	id = newID()
	st.Store.Save(context.Background(), a.cfg.prefix+id, encodePayload(time.Now().UnixNano(), map[string][]byte{"m": mp}), 0, time.Hour)
	b3 := newBrowser(t, a)
	b3.setCookie(id)
	wantBody(t, b3.do("POST", "/set?v=x"), 200, "ok")
	if data, _, _ := a.raw(t, st, id); isJSONDoc(data) || data[0] != payloadV2 {
		t.Fatalf("a session with a msgpack value was written as %q", data)
	}

	// A damaged document starts a fresh session and stays as it was.
	id = newID()
	st.Store.Save(context.Background(), a.cfg.prefix+id, []byte(`{"ginsession":1,"values":{"k":`), 0, time.Hour)
	b4 := newBrowser(t, a)
	b4.setCookie(id)
	wantBody(t, b4.do("GET", "/get"), 200, " false")
	if errs := a.drainErrs(); len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) {
		t.Fatalf("errors %v, want one ErrCorrupt", errs)
	}
}

func TestDecodeJSONDocRejects(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"ginsession":2,"created":"2026-01-01T00:00:00Z","values":{}}`,
		`{"ginsession":1,"created":"2026-01-01T00:00:00Z","values":{"\u0000flash":"x"}}`,
		`{"ginsession":1,"created":"2026-01-01T00:00:00Z","marks":["zz"],"values":{}}`,
		`{"ginsession":1,"created":"2026-01-01T00:00:00Z","marks":["00","01","02","03","04"],"values":{}}`,
		`{"ginsession":1,"created":"yesterday","values":{}}`,
		`{"ginsession":1`,
	} {
		if _, _, _, err := decodeJSONDoc([]byte(doc)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeJSONDoc(%s) = %v, want ErrCorrupt", doc, err)
		}
	}
}
