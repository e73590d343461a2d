package ginsession

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A Codec encodes and decodes session values. ginsession encodes each value
// on its own, so [Get] decodes straight into the caller's type: an int comes
// back as an int, a struct as that struct.
//
// Marshal must return a slice the caller may keep. Implementations must be
// safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Msgpack is the default Codec. It encodes with
// github.com/vmihailenco/msgpack/v5, honouring `msgpack` struct tags.
// Decoding into an interface type yields int64, uint64, float64, string,
// []byte, []any and map[string]any rather than msgpack's narrowest types.
var Msgpack Codec = msgpackCodec{}

// JSON is a Codec based on encoding/json, for stores shared with programs
// that read session values as JSON. It is slower than [Msgpack], and
// values round-trip only as far as encoding/json allows (a time.Time keeps
// its instant, a []byte becomes base64 and back).
var JSON Codec = jsonCodec{}

type msgpackCodec struct{}

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{dec: msgpack.NewDecoder(nil)}
	d.dec.UseLooseInterfaceDecoding(true)
	return d
}}

// msgpackEncoder is an Encoder with the buffer it writes to, pooled so
// that Marshal allocates only the slice it returns.
type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := &msgpackEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// maxPooledBuffer is the largest buffer put back in the pool: one huge
// value should not keep its memory for the life of the program.
const maxPooledBuffer = 64 << 10

func (msgpackCodec) Marshal(v any) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.buf.Reset()
	e.enc.Reset(&e.buf)
	var b []byte
	err := e.enc.Encode(v)
	if err == nil {
		b = bytes.Clone(e.buf.Bytes())
	}
	if e.buf.Cap() <= maxPooledBuffer {
		msgpackEncoders.Put(e)
	}
	return b, err
}

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	d := msgpackDecoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	d.dec.UseLooseInterfaceDecoding(true)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	msgpackDecoders.Put(d)
	return err
}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// sameValue reports whether two encodings hold the same value, so that
// setting a value equal to the stored one writes nothing. Equal bytes
// always do. msgpack writes a map's entries in Go's random iteration
// order, so two encodings of one map may differ in order only; they are
// then of one length, and are compared decoded. Only maps and arrays can
// hold a map; other values are equal only as bytes.
func (cfg *config) sameValue(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if _, ok := cfg.codec.(msgpackCodec); !ok || len(a) != len(b) || !msgpackContainer(a[0]) || !msgpackContainer(b[0]) {
		return false
	}
	var x, y any
	if cfg.codec.Unmarshal(a, &x) != nil || cfg.codec.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// msgpackContainer reports whether c starts a msgpack map or array.
func msgpackContainer(c byte) bool {
	return c >= 0x80 && c <= 0x9f || c >= 0xdc && c <= 0xdf // fixmap, fixarray, array 16/32, map 16/32
}
