package memcachedstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want reply
	}{
		{"EN\r\n", reply{code: "EN"}},
		{"HD\r\n", reply{code: "HD"}},
		{"HD c42\r\n", reply{code: "HD", cas: 42, hasCAS: true}},
		{"NS c0\r\n", reply{code: "NS", cas: 0, hasCAS: true}},
		{"EX c0\r\n", reply{code: "EX", hasCAS: true}},
		{"NF\r\n", reply{code: "NF"}},
		{"VA 5 c7\r\nhello\r\n", reply{code: "VA", value: []byte("hello"), cas: 7, hasCAS: true}},
		{"VA 0 c7\r\n\r\n", reply{code: "VA", value: []byte{}, cas: 7, hasCAS: true}},
		{"VA 4 t100 c18446744073709551615 W\r\n\r\n\r\n\r\n", reply{code: "VA", value: []byte("\r\n\r\n"), cas: math.MaxUint64, hasCAS: true}},
		{"VA 2 c1\r\n\x00\xff\r\n", reply{code: "VA", value: []byte{0, 0xff}, cas: 1, hasCAS: true}},
	} {
		got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)), 100)
		if err != nil {
			t.Errorf("readReply(%q): %v", tc.in, err)
			continue
		}
		if got.code != tc.want.code || !bytes.Equal(got.value, tc.want.value) || got.cas != tc.want.cas || got.hasCAS != tc.want.hasCAS {
			t.Errorf("readReply(%q) = %+v; want %+v", tc.in, got, tc.want)
		}
		if (got.value == nil) != (tc.want.value == nil) {
			t.Errorf("readReply(%q) value nil = %t; want %t", tc.in, got.value == nil, tc.want.value == nil)
		}
	}
}

func TestReadReplyConsumesExactlyOneReply(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("VA 3 c1\r\nabc\r\nEN\r\nHD c2\r\n"))
	for _, want := range []string{"VA", "EN", "HD"} {
		got, err := readReply(r, 100)
		if err != nil || got.code != want {
			t.Fatalf("readReply = %+v, %v; want %s", got, err, want)
		}
	}
	if _, err := readReply(r, 100); !errors.Is(err, io.EOF) {
		t.Fatalf("readReply at the end = %v; want io.EOF", err)
	}
}

// errOversize stands for an *oversizeError in TestReadReplyErrors.
var errOversize = errors.New("oversize")

func TestReadReplyErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error // nil: any error
	}{
		{"", io.EOF},
		{"HD", io.ErrUnexpectedEOF},
		{"HD\n", ErrProtocol},
		{"\r\n", ErrProtocol},
		{"OK\r\n", ErrProtocol},
		{"hd\r\n", ErrProtocol},
		{"HDX\r\n", ErrProtocol},
		{"VALUE k 0 1\r\n", ErrProtocol},
		{"VA\r\n", ErrProtocol},
		{"VA -1 c1\r\n", ErrProtocol},
		{"VA +1 c1\r\nx\r\n", ErrProtocol},
		{"VA x c1\r\n", ErrProtocol},
		{"VA 101 c1\r\n", errOversize},
		{"VA 9223372036854775807 c1\r\n", errOversize},
		{"VA 9223372036854775808 c1\r\n", ErrProtocol},
		{"VA 3 c1\r\nab", io.ErrUnexpectedEOF},
		{"VA 3 c1\r\nabcd\r\n", ErrProtocol},
		{"VA 3 c1\r\nabc", io.ErrUnexpectedEOF},
		{"HD c\r\n", ErrProtocol},
		{"HD c-1\r\n", ErrProtocol},
		{"HD c+1\r\n", ErrProtocol},
		{"HD c18446744073709551616\r\n", ErrProtocol},
		{"HD c1 c2\r\n", ErrProtocol},
		{"HD  c1\r\n", ErrProtocol},
		{"HD c1 \r\n", ErrProtocol},
		{"HD " + strings.Repeat("x", 5000) + "\r\n", ErrProtocol},
		{"ERROR\r\n", nil},
		{"CLIENT_ERROR bad command line format\r\n", nil},
		{"SERVER_ERROR out of memory storing object\r\n", nil},
		{"SERVER_ERROR object too large for cache\r\n", ErrTooLarge},
	} {
		got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)), 100)
		if err == nil {
			t.Errorf("readReply(%.40q) = %+v; want an error", tc.in, got)
			continue
		}
		var oversize *oversizeError
		if tc.want == errOversize {
			if !errors.As(err, &oversize) {
				t.Errorf("readReply(%.40q) = %v; want an *oversizeError", tc.in, err)
			}
		} else if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("readReply(%.40q) = %v; want %v", tc.in, err, tc.want)
		}
	}
}

func TestServerErrorMessage(t *testing.T) {
	_, err := readReply(bufio.NewReader(strings.NewReader("SERVER_ERROR out of\x01 memory"+strings.Repeat("!", 500)+"\r\n")), 100)
	var se *serverError
	if !errors.As(err, &se) {
		t.Fatalf("readReply = %v; want a *serverError", err)
	}
	if want := "out of memory" + strings.Repeat("!", maxServerMessage-len("out of memory")); se.msg != want {
		t.Fatalf("message = %q; want %q", se.msg, want)
	}
	if errors.Is(err, ErrTooLarge) {
		t.Fatal("out of memory matches ErrTooLarge")
	}
	if _, err := readReply(bufio.NewReader(strings.NewReader("ERRORS\r\n")), 100); !errors.Is(err, ErrProtocol) {
		t.Fatalf("ERRORS = %v; want ErrProtocol", err)
	}
}

func TestEncodeKey(t *testing.T) {
	plain := []string{"session:abc", "a", strings.Repeat("k", maxKeyLen), "!~{}:/\\\"'"}
	for _, key := range plain {
		if k := encodeKey(key); k.text != key || k.base64 || k.stored != len(key) {
			t.Errorf("encodeKey(%q) = %+v; want the key as it is", key, k)
		}
	}
	hashed := []string{"", "with space", "tab\there", "new\nline", "del\x7f", "caf\u00e9", strings.Repeat("k", maxKeyLen+1), "nul\x00"}
	seen := map[string]string{}
	for _, key := range hashed {
		k := encodeKey(key)
		if !k.base64 || k.stored != hashedKeyLen || len(k.text) > maxKeyLen {
			t.Errorf("encodeKey(%q) = %+v; want a base64 hashed key", key, k)
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(k.text)
		sum := sha256.Sum256([]byte(key))
		if err != nil || raw[0] != hashedKeyMarker || !bytes.Equal(raw[1:], sum[:]) {
			t.Errorf("encodeKey(%q) = %q; want base64 of 0xff and the SHA-256", key, k.text)
		}
		if isPlainKey(string(raw)) {
			t.Errorf("encodeKey(%q) decodes to a plain key", key)
		}
		if other, dup := seen[k.text]; dup {
			t.Errorf("encodeKey(%q) = encodeKey(%q)", key, other)
		}
		seen[k.text] = key
	}
}

func TestExpiryToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 250_000_000)
	const day = 24 * time.Hour
	nowUp := int64(1_800_000_001) // now rounded up to a second
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{
		{time.Nanosecond, 2},
		{time.Millisecond, 2},
		{time.Second, 2},
		{time.Second + time.Nanosecond, 3},
		{1500 * time.Millisecond, 3},
		{time.Minute, 61},
		{30*day - 2*time.Second, maxRelative - 1},
		{30*day - time.Second, maxRelative},
		{30*day - time.Second + time.Nanosecond, nowUp + maxRelative}, // 2592001 s would read as 1970
		{30 * day, nowUp + maxRelative + 1},
		{31 * day, nowUp + 31*86400 + 1},
		{31*day + 750*time.Millisecond, nowUp + 31*86400 + 1},
		{31*day + 751*time.Millisecond, nowUp + 31*86400 + 2},
		{100 * 365 * day, maxUnix},
		{math.MaxInt64, maxUnix},
	} {
		if got := expiry(tc.ttl, now); got != tc.want {
			t.Errorf("expiry(%v) = %d; want %d", tc.ttl, got, tc.want)
		}
	}
	// The first ttl sent as a Unix time must not be read as seconds.
	if got := expiry(30*day, time.Unix(0, 0)); got <= maxRelative {
		t.Errorf("expiry(30 days) at the epoch = %d, which memcached reads as seconds", got)
	}
}

func TestWriteRequests(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	plain, hashed := encodeKey("session:abc"), encodeKey("has space")
	writeGet(w, plain, 0)
	writeGet(w, plain, 61)
	writeGet(w, hashed, 0)
	writeSet(w, plain, []byte("x\r\ny"), 0, 61)
	writeSet(w, hashed, nil, 18446744073709551615, 1900000000)
	writeDelete(w, plain)
	writeDelete(w, hashed)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	h := hashed.text
	want := "mg session:abc v c\r\n" +
		"mg session:abc v c T61\r\n" +
		"mg " + h + " b v c\r\n" +
		"ms session:abc 4 c ME T61\r\nx\r\ny\r\n" +
		"ms " + h + " 0 b c C18446744073709551615 T1900000000\r\n\r\n" +
		"md session:abc\r\n" +
		"md " + h + " b\r\n"
	if got := buf.String(); got != want {
		t.Fatalf("requests:\n%q\nwant:\n%q", got, want)
	}
}
