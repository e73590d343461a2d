package ginsession

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A Codec encodes and decodes session values. ginsession encodes each value
// on its own, so [Get] decodes straight into the caller's type: an int comes
// back as an int, a struct as that struct.
//
// Marshal must return a slice the caller may keep. Implementations must be
// safe for concurrent use. Unmarshal decodes bytes from the store, which
// may be damaged or written by someone else: it must bound the work and
// the stack they can cost, as [Msgpack] and [JSON] do with [MaxDepth].
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Msgpack is the default Codec. It encodes with
// github.com/vmihailenco/msgpack/v5, honouring `msgpack` struct tags.
// Decoding into an interface type yields int64, uint64, float64, string,
// []byte, []any and map[string]any rather than msgpack's narrowest types.
// Values nested deeper than [MaxDepth] are neither encoded nor decoded.
var Msgpack Codec = msgpackCodec{}

// JSON is a Codec based on encoding/json, for stores shared with programs
// that read session values as JSON. It is slower than [Msgpack], and
// values round-trip only as far as encoding/json allows (a time.Time keeps
// its instant, a []byte becomes base64 and back). Values nested deeper
// than [MaxDepth] are neither encoded nor decoded.
var JSON Codec = jsonCodec{}

// MaxDepth is how deeply maps, arrays, slices and structs may nest in a
// value encoded by [Msgpack] or [JSON]; a scalar is at depth 0 and [][]int
// at depth 2. Decoding recurses once per level, costing the reading
// goroutine 200 to 1,000 bytes of stack per level (the most for structs
// decoded by reflection), so a stored value nested millions deep would
// crash the program. Past MaxDepth, Marshal returns an error, so [Set]
// and [Update] report it, and Unmarshal returns one without decoding, so
// [Get] finds no value. 1,000 levels cost at most about 1 MB of stack
// and are far more than a session value needs; encoding/json's own limit
// of 10,000 would allow ten times as much.
const MaxDepth = 1000

// errTooDeep is returned for values nested deeper than MaxDepth.
var errTooDeep = fmt.Errorf("ginsession: value nested deeper than %d levels", MaxDepth)

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
	if err == nil && e.buf.Len() > MaxDepth {
		// What Unmarshal would refuse is not written: a value too deep
		// fails here, not in Get. Fewer bytes cannot nest too deep.
		err = checkMsgpack(e.buf.Bytes())
	}
	if err == nil {
		b = bytes.Clone(e.buf.Bytes())
	}
	if e.buf.Cap() <= maxPooledBuffer {
		msgpackEncoders.Put(e)
	}
	return b, err
}

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkMsgpack(data); err != nil {
		return err
	}
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

func (jsonCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err == nil {
		err = checkJSONDepth(b)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := checkJSONDepth(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// checkJSONDepth returns errTooDeep if arrays and objects nest deeper than
// MaxDepth in data. encoding/json stops at 10,000 levels by itself; this
// scan, much cheaper than its parser, lowers that to MaxDepth. It counts
// brackets outside strings and does not otherwise validate: on valid JSON
// its depth is exact, and json.Unmarshal rejects the rest before
// decoding anything. Values of at most MaxDepth bytes, too short to nest
// too deep, are not scanned.
func checkJSONDepth(data []byte) error {
	if len(data) <= MaxDepth {
		return nil
	}
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			if depth++; depth > MaxDepth {
				return errTooDeep
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}

// sameValue reports whether two encodings hold the same value, so that
// setting a value equal to the stored one writes nothing. Equal bytes
// always do. msgpack writes a map's entries in Go's random iteration
// order, so two encodings of one map may differ in order only; they are
// then of one length and made of the same bytes, and are compared decoded.
// Only maps and arrays can hold a map; other values are equal only as
// bytes. The cheap checks come first: a changed map, such as a cart with
// one more item, is told apart without decoding.
func (cfg *config) sameValue(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if _, ok := cfg.codec.(msgpackCodec); !ok || len(a) != len(b) || !msgpackContainer(a[0]) || !msgpackContainer(b[0]) || !sameBytes(a, b) {
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

// sameBytes reports whether a and b may hold the same bytes in another
// order: it compares their sums and sums of squares, which entries written
// in another order leave alone. A false answer is certain, a true one
// is not.
func sameBytes(a, b []byte) bool {
	var sa, sb, qa, qb uint64
	for i := range a {
		x, y := uint64(a[i]), uint64(b[i])
		sa, sb = sa+x, sb+y
		qa, qb = qa+x*x, qb+y*y
	}
	return sa == sb && qa == qb
}

// errMalformed is returned for bytes that are not one msgpack value.
var errMalformed = errors.New("ginsession: malformed msgpack value")

// checkMsgpack makes sure that data is exactly one msgpack value whose
// every declared length fits in data, and whose maps and arrays nest at
// most MaxDepth deep, before the decoder sees it: the decoder trusts a
// map's or an array's length and sizes what it allocates by it, so five
// damaged bytes could ask for gigabytes, and it recurses once per level,
// so a few megabytes of nesting would exhaust the stack. It is a loop,
// not a recursion, and allocates nothing for values nested up to 16 deep.
func checkMsgpack(data []byte) error {
	if len(data) > MaxDepth {
		return checkMsgpackDepth(data)
	}
	// Every map or array takes a byte at least, so these few bytes cannot
	// nest too deep: most values get this faster check of the lengths.
	i, pending := 0, 1 // values still to be read
	for ; pending > 0; pending-- {
		if i >= len(data) {
			return errMalformed
		}
		c := data[i]
		i++
		var skip, items, lenBytes int // bytes to skip, values it holds, bytes of its length
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		case c <= 0x8f: // fixmap
			items = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			items = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = int(c & 0x1f)
		case c == 0xc4 || c == 0xd9: // bin 8, str 8
			lenBytes = 1
		case c == 0xc5 || c == 0xda: // bin 16, str 16
			lenBytes = 2
		case c == 0xc6 || c == 0xdb: // bin 32, str 32
			lenBytes = 4
		case c == 0xc7 || c == 0xc8 || c == 0xc9: // ext 8, 16, 32: length, type, data
			lenBytes, skip = 1<<(c-0xc7), 1
		case c == 0xca || c == 0xce || c == 0xd2: // float 32, uint 32, int 32
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3: // float 64, uint 64, int 64
			skip = 8
		case c == 0xcc || c == 0xd0: // uint 8, int 8
			skip = 1
		case c == 0xcd || c == 0xd1: // uint 16, int 16
			skip = 2
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xdd: // array 16, 32
			lenBytes = 2 << (c - 0xdc)
		case c == 0xde || c == 0xdf: // map 16, 32
			lenBytes = 2 << (c - 0xde)
		default: // 0xc1, never used
			return errMalformed
		}
		if lenBytes > 0 {
			if lenBytes > len(data)-i {
				return errMalformed
			}
			var n uint64
			for _, b := range data[i : i+lenBytes] {
				n = n<<8 | uint64(b)
			}
			i += lenBytes
			switch {
			case n > uint64(len(data)): // more than could follow
				return errMalformed
			case c == 0xdc || c == 0xdd:
				items = int(n)
			case c == 0xde || c == 0xdf:
				items = 2 * int(n)
			default:
				skip += int(n)
			}
		}
		if skip > len(data)-i || items > len(data)-i { // every value takes a byte at least
			return errMalformed
		}
		i += skip
		pending += items
	}
	if i != len(data) {
		return errMalformed
	}
	return nil
}

// checkMsgpackDepth is checkMsgpack for values of more than MaxDepth
// bytes. It reads the format as checkMsgpack does (FuzzCheckMsgpack
// holds the two to that), and also follows the depth, which makes it
// about a third slower.
func checkMsgpackDepth(data []byte) error {
	// For each map or array around the value being read, open holds how
	// many values will still be pending once it has been read: it is
	// open while more than that are.
	var small [16]int
	open := small[:0]
	i, pending := 0, 1 // values still to be read
	for ; pending > 0; pending-- {
		if i >= len(data) {
			return errMalformed
		}
		c := data[i]
		i++
		var skip, items, lenBytes int // bytes to skip, values it holds, bytes of its length
		nest := false                 // a map or an array
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		case c <= 0x8f: // fixmap
			items, nest = 2*int(c&0x0f), true
		case c <= 0x9f: // fixarray
			items, nest = int(c&0x0f), true
		case c <= 0xbf: // fixstr
			skip = int(c & 0x1f)
		case c == 0xc4 || c == 0xd9: // bin 8, str 8
			lenBytes = 1
		case c == 0xc5 || c == 0xda: // bin 16, str 16
			lenBytes = 2
		case c == 0xc6 || c == 0xdb: // bin 32, str 32
			lenBytes = 4
		case c == 0xc7 || c == 0xc8 || c == 0xc9: // ext 8, 16, 32: length, type, data
			lenBytes, skip = 1<<(c-0xc7), 1
		case c == 0xca || c == 0xce || c == 0xd2: // float 32, uint 32, int 32
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3: // float 64, uint 64, int 64
			skip = 8
		case c == 0xcc || c == 0xd0: // uint 8, int 8
			skip = 1
		case c == 0xcd || c == 0xd1: // uint 16, int 16
			skip = 2
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xdd: // array 16, 32
			lenBytes, nest = 2<<(c-0xdc), true
		case c == 0xde || c == 0xdf: // map 16, 32
			lenBytes, nest = 2<<(c-0xde), true
		default: // 0xc1, never used
			return errMalformed
		}
		if lenBytes > 0 {
			if lenBytes > len(data)-i {
				return errMalformed
			}
			var n uint64
			for _, b := range data[i : i+lenBytes] {
				n = n<<8 | uint64(b)
			}
			i += lenBytes
			switch {
			case n > uint64(len(data)): // more than could follow
				return errMalformed
			case c == 0xdc || c == 0xdd:
				items = int(n)
			case c == 0xde || c == 0xdf:
				items = 2 * int(n)
			default:
				skip += int(n)
			}
		}
		if skip > len(data)-i || items > len(data)-i { // every value takes a byte at least
			return errMalformed
		}
		i += skip
		if nest {
			for len(open) > 0 && open[len(open)-1] >= pending {
				open = open[:len(open)-1] // read to its end
			}
			if len(open) == MaxDepth { // this one would be at MaxDepth+1
				return errTooDeep
			}
			if items > 0 {
				open = append(open, pending-1)
			}
		}
		pending += items
	}
	if i != len(data) {
		return errMalformed
	}
	return nil
}
