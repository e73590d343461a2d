package memcachedstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// This file speaks the part of memcached's meta protocol that the store
// needs: mg, ms and md requests, and their replies.

// maxKeyLen is the longest key memcached accepts, in bytes.
const maxKeyLen = 250

// hashedKeyMarker starts every hashed key. It is outside the printable
// ASCII range, so a hashed key never equals a key sent as it is.
const hashedKeyMarker = 0xff

// hashedKeyLen is the length of a hashed key as memcached stores it.
const hashedKeyLen = 1 + sha256.Size

// A wireKey is a key as it goes on the wire.
type wireKey struct {
	text   string // the key token
	base64 bool   // text is base64, and the request carries the b flag
	stored int    // the length of the key that memcached stores
}

// encodeKey returns the key that stands for key on the wire. A key that
// memcached takes as it is (1 to 250 printable ASCII bytes, no space) is
// sent unchanged; any other key is replaced by hashedKeyMarker followed by
// its SHA-256, sent in base64 with the b flag.
func encodeKey(key string) wireKey {
	if isPlainKey(key) {
		return wireKey{text: key, stored: len(key)}
	}
	sum := sha256.Sum256([]byte(key))
	raw := append([]byte{hashedKeyMarker}, sum[:]...)
	return wireKey{text: base64.StdEncoding.EncodeToString(raw), base64: true, stored: hashedKeyLen}
}

// isPlainKey reports whether memcached accepts key as it is.
func isPlainKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

const (
	// maxRelative is the largest expiry memcached reads as seconds from
	// now; it reads larger values as a Unix time.
	maxRelative = 30 * 24 * 60 * 60
	// maxUnix is the latest Unix time memcached accepts as an expiry: it
	// parses the value as a signed 32-bit number (2038-01-19).
	maxUnix = math.MaxInt32
)

// expiry returns the T token for an entry that must live at least ttl
// (> 0) from now.
//
// memcached's clock ticks once a second and an entry saved with T<n>
// expires at the n-th tick after it was saved, so it lives between n-1
// and n seconds. expiry therefore asks for one second more than ttl
// rounded up: the entry lives at least ttl and less than ttl + 2 s.
// Beyond 30 days the token is a Unix time, from now's clock, capped at
// maxUnix.
func expiry(ttl time.Duration, now time.Time) int64 {
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	secs++
	if secs <= maxRelative {
		return secs
	}
	end := now.Add(ttl)
	unix := end.Unix()
	if end.Nanosecond() != 0 {
		unix++
	}
	unix++
	if unix > maxUnix || unix < 0 || end.Before(now) {
		return maxUnix
	}
	return unix
}

// writeGet writes "mg <key> [b] v c [T<exp>]": the value and CAS of key,
// renewing its expiry when exp > 0.
func writeGet(w *bufio.Writer, k wireKey, exp int64) {
	w.WriteString("mg ")
	w.WriteString(k.text)
	if k.base64 {
		w.WriteString(" b")
	}
	w.WriteString(" v c")
	if exp > 0 {
		w.WriteString(" T")
		w.WriteString(strconv.FormatInt(exp, 10))
	}
	w.WriteString("\r\n")
}

// writeSet writes "ms <key> <len> [b] c ME T<exp>" (version 0: add) or
// "ms <key> <len> [b] c C<version> T<exp>" (compare-and-set), then data.
func writeSet(w *bufio.Writer, k wireKey, data []byte, version uint64, exp int64) {
	w.WriteString("ms ")
	w.WriteString(k.text)
	w.WriteByte(' ')
	w.WriteString(strconv.Itoa(len(data)))
	if k.base64 {
		w.WriteString(" b")
	}
	w.WriteString(" c")
	if version == 0 {
		w.WriteString(" ME")
	} else {
		w.WriteString(" C")
		w.WriteString(strconv.FormatUint(version, 10))
	}
	w.WriteString(" T")
	w.WriteString(strconv.FormatInt(exp, 10))
	w.WriteString("\r\n")
	w.Write(data)
	w.WriteString("\r\n")
}

// writeDelete writes "md <key> [b]".
func writeDelete(w *bufio.Writer, k wireKey) {
	w.WriteString("md ")
	w.WriteString(k.text)
	if k.base64 {
		w.WriteString(" b")
	}
	w.WriteString("\r\n")
}

// A reply is one parsed answer to a meta command.
type reply struct {
	code   string // two letters: VA, HD, EN, NS, EX, NF
	value  []byte // the data block of a VA reply; a fresh slice
	cas    uint64 // the c flag's token
	hasCAS bool
}

// A serverError is an ERROR, CLIENT_ERROR or SERVER_ERROR reply. Its
// message is the server's, cleaned of anything but printable ASCII.
type serverError struct {
	kind string
	msg  string
}

func (e *serverError) Error() string {
	if e.msg == "" {
		return "server replied " + e.kind
	}
	return "server replied " + e.kind + ": " + e.msg
}

// Is makes "object too large for cache" match ErrTooLarge.
func (e *serverError) Is(target error) bool {
	return target == ErrTooLarge && e.kind == "SERVER_ERROR" && e.msg == "object too large for cache"
}

// An oversizeError is a VA reply announcing a value larger than the item
// size limit. The value is not read.
type oversizeError struct {
	size  uint64
	limit int
}

func (e *oversizeError) Error() string {
	return fmt.Sprintf("the item holds %d bytes, more than the item size limit %d", e.size, e.limit)
}

// maxServerMessage is how much of a server's error message is kept.
const maxServerMessage = 120

// protocolErrorf returns an error wrapping ErrProtocol. Details never quote
// reply data beyond a code, which could hold a key or a payload.
func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// readReply reads one reply. It reads a data block only for VA, and
// refuses one longer than maxValue bytes with an *oversizeError, without
// reading it. Any error
// leaves the connection in an unknown state: it must not be reused.
func readReply(r *bufio.Reader, maxValue int) (reply, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return reply{}, protocolErrorf("reply line longer than %d bytes", r.Size())
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return reply{}, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return reply{}, protocolErrorf("reply line not ended by CRLF")
	}
	line = line[:len(line)-2]

	for _, kind := range []string{"ERROR", "CLIENT_ERROR", "SERVER_ERROR"} {
		if rest, ok := bytes.CutPrefix(line, []byte(kind)); ok && (len(rest) == 0 || rest[0] == ' ') {
			return reply{}, &serverError{kind: kind, msg: printable(bytes.TrimPrefix(rest, []byte(" ")))}
		}
	}

	fields := bytes.Split(line, []byte(" "))
	code := fields[0]
	if len(code) != 2 || !isUpper(code[0]) || !isUpper(code[1]) {
		return reply{}, protocolErrorf("reply line does not start with a two-letter code")
	}
	rep := reply{code: string(code)}
	flags := fields[1:]
	size := -1
	switch rep.code {
	case "VA":
		if len(fields) < 2 {
			return reply{}, protocolErrorf("VA reply without a size")
		}
		n, err := strconv.ParseUint(string(fields[1]), 10, 63)
		if err != nil {
			return reply{}, protocolErrorf("VA reply with a malformed size")
		}
		if n > uint64(maxValue) {
			return reply{}, &oversizeError{size: n, limit: maxValue}
		}
		size = int(n)
		flags = fields[2:]
	case "HD", "EN", "NS", "EX", "NF":
	default:
		return reply{}, protocolErrorf("unknown reply code %q", rep.code)
	}
	for _, f := range flags {
		if len(f) == 0 {
			return reply{}, protocolErrorf("%s reply with an empty flag", rep.code)
		}
		if f[0] != 'c' {
			continue // a flag the store did not ask for
		}
		if rep.hasCAS {
			return reply{}, protocolErrorf("%s reply with two CAS flags", rep.code)
		}
		cas, err := strconv.ParseUint(string(f[1:]), 10, 64)
		if err != nil {
			return reply{}, protocolErrorf("%s reply with a malformed CAS", rep.code)
		}
		rep.cas, rep.hasCAS = cas, true
	}
	if size >= 0 {
		block := make([]byte, size+2)
		if _, err := io.ReadFull(r, block); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return reply{}, err
		}
		if block[size] != '\r' || block[size+1] != '\n' {
			return reply{}, protocolErrorf("data block not ended by CRLF")
		}
		rep.value = block[:size:size]
	}
	return rep, nil
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// printable returns b with every byte that is not printable ASCII left
// out, cut to maxServerMessage bytes.
func printable(b []byte) string {
	out := make([]byte, 0, min(len(b), maxServerMessage))
	for _, c := range b {
		if len(out) == maxServerMessage {
			break
		}
		if ' ' <= c && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
