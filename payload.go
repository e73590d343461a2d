package ginsession

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The stored payload is a small versioned envelope around the values, each
// encoded on its own by the Codec. Format 2, the one written:
//
//	byte     format version (payloadV2)
//	varint   creation time, Unix nanoseconds
//	uvarint  number of commit marks m (at most maxMarks)
//	m times: 8 bytes, a commit mark
//	uvarint  number of values n
//	n times: uvarint len(key), key, uvarint len(value), value
//
// Format 1, still read, has no commit marks and counts the creation time in
// whole Unix seconds. A later format gets a new version byte; payloadHeader
// keeps reading every version that was ever written.
//
// A commit mark is a random number each commit writes along with its data,
// keeping the marks of the last few commits before it. A commit whose write
// was applied although the store answered otherwise (a store client that
// timed out and sent the write again, which then lost the race to its own
// first copy) finds its mark when it reloads the session, and does not
// apply its changes a second time.
const (
	payloadV1 = 1
	payloadV2 = 2
)

// maxMarks is how many commit marks a payload keeps: a commit recognises
// its own write as long as fewer than maxMarks other commits followed it.
const maxMarks = 4

// markLen is the length of a commit mark.
const markLen = 8

// ErrCorrupt reports a stored payload ginsession cannot decode: it was
// damaged, or written by a newer, incompatible version of ginsession. The
// entry is left as it is and the request gets a fresh session.
var ErrCorrupt = errors.New("ginsession: stored session cannot be decoded")

// encodePayload returns the envelope for created (Unix nanoseconds) and
// values, with no commit marks.
func encodePayload(created int64, values map[string][]byte) []byte {
	return encodePayloadMarks(created, nil, values)
}

// encodePayloadMarks returns the envelope for created, values and marks,
// a whole number of commit marks of which the last maxMarks are kept.
func encodePayloadMarks(created int64, marks []byte, values map[string][]byte) []byte {
	if len(marks) > maxMarks*markLen {
		marks = marks[len(marks)-maxMarks*markLen:]
	}
	n := 1 + binary.MaxVarintLen64*2 + len(marks) + 1
	for k, v := range values {
		n += len(k) + len(v) + 2*binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	b = append(b, payloadV2)
	b = binary.AppendVarint(b, created)
	b = binary.AppendUvarint(b, uint64(len(marks)/markLen))
	b = append(b, marks...)
	b = binary.AppendUvarint(b, uint64(len(values)))
	for k, v := range values {
		b = appendBytes(b, k)
		b = appendBytes(b, v)
	}
	return b
}

// payloadSize returns the most bytes encodePayloadMarks can take for
// values.
func payloadSize(values map[string][]byte) int {
	n := 1 + binary.MaxVarintLen64 + 1 + maxMarks*markLen + uvarintLen(len(values))
	for k, v := range values {
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	return n
}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// payloadHeader reads an envelope's format version, creation time (Unix
// nanoseconds), commit marks and number of values, and returns a reader at
// the first value. The marks alias b.
func payloadHeader(b []byte) (r reader, created int64, marks []byte, n uint64, err error) {
	if len(b) == 0 {
		return r, 0, nil, 0, fmt.Errorf("%w: empty payload", ErrCorrupt)
	}
	r = reader{b: b[1:]}
	switch b[0] {
	case payloadV1:
		secs := r.varint()
		if r.err == nil && (secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second)) {
			r.fail("creation time %d out of range", secs)
		}
		created = secs * int64(time.Second)
	case payloadV2:
		created = r.varint()
		m := r.uvarint()
		switch {
		case r.err != nil:
		case m > maxMarks:
			r.fail("%d commit marks, more than %d", m, maxMarks)
		case m*markLen > uint64(len(r.b)):
			r.fail("commit marks exceed payload size")
		default:
			marks = r.b[: m*markLen : m*markLen]
			r.b = r.b[m*markLen:]
		}
	default:
		return r, 0, nil, 0, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, b[0])
	}
	n = r.uvarint()
	if r.err == nil && n > uint64(len(r.b))/2 { // every value takes at least two bytes
		r.fail("value count %d exceeds payload size", n)
	}
	if r.err != nil {
		return r, 0, nil, 0, r.err
	}
	return r, created, marks, n, nil
}

// payloadMarks returns the commit marks of an envelope that payloadHeader
// accepts, aliasing b; nil for any other.
func payloadMarks(b []byte) []byte {
	if isJSONDoc(b) {
		_, marks, _, _ := decodeJSONDoc(b)
		return marks
	}
	_, _, marks, _, err := payloadHeader(b)
	if err != nil {
		return nil
	}
	return marks
}

// hasMark reports whether marks holds mark.
func hasMark(marks []byte, mark uint64) bool {
	for len(marks) >= markLen {
		if binary.BigEndian.Uint64(marks) == mark {
			return true
		}
		marks = marks[markLen:]
	}
	return false
}

// decodePayload parses an envelope; created is in Unix nanoseconds. The
// returned values alias b.
func decodePayload(b []byte) (created int64, values map[string][]byte, err error) {
	if isJSONDoc(b) {
		created, _, values, err = decodeJSONDoc(b)
		return created, values, err
	}
	r, created, _, n, err := payloadHeader(b)
	if err != nil {
		return 0, nil, err
	}
	values = make(map[string][]byte, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.bytes()
		v := r.bytes()
		if r.err != nil {
			break
		}
		if _, dup := values[string(k)]; dup {
			r.fail("duplicate key %q", k)
			break
		}
		values[string(k)] = v
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	return created, values, nil
}

// lazyValues is the most values a loaded session may hold for them to be
// looked up in its payload instead of decoded into a map: a request that
// only reads then builds no map and no key strings. Checking such a
// payload for duplicate keys compares every pair, hence the limit.
const lazyValues = 16

// scanPayload checks an envelope of at most lazyValues values exactly as
// decodePayload would, without decoding it, and returns its creation time
// and number of values. For a larger envelope it returns ok false and no
// error: decode that one.
func scanPayload(b []byte) (created int64, n int, ok bool, err error) {
	if isJSONDoc(b) { // never looked up lazily
		created, _, values, err := decodeJSONDoc(b)
		return created, len(values), false, err
	}
	r, created, _, count, err := payloadHeader(b)
	if err != nil {
		return 0, 0, false, err
	}
	if count > lazyValues {
		return 0, 0, false, nil
	}
	var keys [lazyValues][]byte
	for i := range int(count) {
		k := r.bytes()
		r.bytes()
		if r.err != nil {
			return 0, 0, false, r.err
		}
		for _, prev := range keys[:i] {
			if bytes.Equal(prev, k) {
				r.fail("duplicate key %q", k)
				return 0, 0, false, r.err
			}
		}
		keys[i] = k
	}
	if len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
		return 0, 0, false, r.err
	}
	return created, int(count), true, nil
}

// payloadValue returns the value stored under key in an envelope that
// scanPayload accepted. It aliases b.
func payloadValue(b []byte, key string) ([]byte, bool) {
	r, _, _, n, err := payloadHeader(b)
	if err != nil {
		return nil, false
	}
	for range n {
		k := r.bytes()
		v := r.bytes()
		if r.err != nil {
			return nil, false
		}
		if string(k) == key {
			return v, true
		}
	}
	return nil, false
}

// packList encodes a list of byte strings; it holds the flash messages.
func packList(items [][]byte) []byte {
	n := binary.MaxVarintLen32
	for _, it := range items {
		n += len(it) + binary.MaxVarintLen32
	}
	b := binary.AppendUvarint(make([]byte, 0, n), uint64(len(items)))
	for _, it := range items {
		b = appendBytes(b, it)
	}
	return b
}

// unpackList decodes what packList encoded. The items alias b.
func unpackList(b []byte) ([][]byte, error) {
	r := reader{b: b}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) { // every item takes at least one byte
		r.fail("item count %d exceeds list size", n)
	}
	if r.err != nil {
		return nil, r.err
	}
	items := make([][]byte, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		items = append(items, r.bytes())
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return items, nil
}

func appendBytes[S string | []byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader consumes an envelope, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad length")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad timestamp")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length %d exceeds payload", n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
