package memcachedstore

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"testing"
)

// FuzzReadReply feeds arbitrary server output to the reply parser. It must
// never panic, return only the errors it documents, keep values within the
// limit, and frame replies exactly: after a well-formed reply in front, the
// rest of the input must parse as it does on its own.
func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"EN\r\n", "HD c1\r\n", "NS c0\r\n", "EX\r\n", "NF\r\n",
		"VA 5 c7\r\nhello\r\n", "VA 0 c1 t-1\r\n\r\nEN\r\n",
		"VA 3 c1\r\nab", "VA 99999999999 c1\r\n", "HD c18446744073709551616\r\n",
		"SERVER_ERROR object too large for cache\r\n", "CLIENT_ERROR bad data chunk\r\n", "ERROR\r\n",
		"HD\n", "\r\n", "VA -1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		alone := parseAll(t, in)
		framed := parseAll(t, append([]byte("VA 2 c9\r\n\r\n\r\n"), in...))
		if len(framed) == 0 || framed[0] != "VA c9 \"\\r\\n\"" {
			t.Fatalf("the reply in front parsed as %q", framed)
		}
		if !slices.Equal(framed[1:], alone) {
			t.Fatalf("after a reply in front: %q; alone: %q", framed[1:], alone)
		}
	})
}

// parseAll reads replies from in until an error, at most 8, and describes
// each, and the error.
func parseAll(t *testing.T, in []byte) []string {
	const maxValue = 1 << 10
	r := bufio.NewReaderSize(bytes.NewReader(in), 64)
	var out []string
	for range 8 {
		rep, err := readReply(r, maxValue)
		if err != nil {
			var se *serverError
			var oe *oversizeError
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &se) && !errors.As(err, &oe) {
				t.Fatalf("unexpected kind of error: %v", err)
			}
			return append(out, "error: "+err.Error())
		}
		if len(rep.code) != 2 || len(rep.value) > maxValue || (rep.code == "VA") != (rep.value != nil) {
			t.Fatalf("bad reply %+v", rep)
		}
		desc := rep.code
		if rep.hasCAS {
			desc += " c" + strconv.FormatUint(rep.cas, 10)
		}
		if rep.value != nil {
			desc += " " + strconv.Quote(string(rep.value))
		}
		out = append(out, desc)
	}
	return out
}

// FuzzReadReplyValue checks that any value, framed as memcached frames
// it, comes back unchanged, with its CAS.
func FuzzReadReplyValue(f *testing.F) {
	f.Add([]byte("hello"), uint64(1))
	f.Add([]byte("\r\nVA 1 c2\r\n"), uint64(18446744073709551615))
	f.Add([]byte{}, uint64(0))
	f.Fuzz(func(t *testing.T, value []byte, cas uint64) {
		in := "VA " + strconv.Itoa(len(value)) + " c" + strconv.FormatUint(cas, 10) + "\r\n" + string(value) + "\r\nEN\r\n"
		r := bufio.NewReaderSize(bytes.NewReader([]byte(in)), 64)
		rep, err := readReply(r, len(value))
		if err != nil {
			t.Fatalf("readReply: %v", err)
		}
		if rep.code != "VA" || !bytes.Equal(rep.value, value) || rep.cas != cas || !rep.hasCAS {
			t.Fatalf("readReply = %+v; want VA %q c%d", rep, value, cas)
		}
		if next, err := readReply(r, 0); err != nil || next.code != "EN" {
			t.Fatalf("the next reply = %+v, %v; want EN", next, err)
		}
	})
}
