package filestore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/ginsession/ginsession/store"
)

// ErrCorrupt is wrapped by the error Load returns when a session file was
// not written by this package: too short, of another format, with version
// 0, or recording another key than the one its name was derived from.
// Save treats such a file as a conflict, the cleanup leaves it alone, and
// Delete removes it.
var ErrCorrupt = store.NewCorruptError("filestore: corrupt session file")

// The layout of a session file. All integers are big-endian.
//
//	offset  size  field
//	0       4     magic, "GSF1"
//	4       8     version, never 0
//	12      8     expiry, Unix time in nanoseconds
//	20      4     length n of the key
//	24      n     the key
//	24+n          the payload, to the end of the file
const (
	magic         = "GSF1"
	versionOffset = 4
	expiryOffset  = 12
	keyLenOffset  = 20
	headerLen     = 24
)

// fileName returns the name of the file that holds key: the lowercase hex
// SHA-256 of the key. It contains no character that any file system
// treats specially or folds in case, and reveals nothing about the key.
func fileName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// isFileName reports whether name has the form fileName gives.
func isFileName(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// header is the fixed part of a session file and the key it records.
type header struct {
	version uint64
	expires int64 // Unix nanoseconds
	key     []byte
}

// expired reports whether the entry has expired at now.
func (h header) expired(now time.Time) bool {
	return now.UnixNano() >= h.expires
}

// encode returns the contents of a session file.
func encode(version uint64, expires int64, key string, data []byte) []byte {
	b := make([]byte, 0, headerLen+len(key)+len(data))
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	return append(b, data...)
}

// decode parses the contents, or the first part, of a session file. It
// returns the header and what follows the key. Its errors wrap ErrCorrupt.
func decode(b []byte) (header, []byte, error) {
	if len(b) < headerLen {
		return header{}, nil, fmt.Errorf("%w: %d bytes, fewer than the %d-byte header", ErrCorrupt, len(b), headerLen)
	}
	if string(b[:versionOffset]) != magic {
		return header{}, nil, fmt.Errorf("%w: the file does not start with %q", ErrCorrupt, magic)
	}
	h := header{
		version: binary.BigEndian.Uint64(b[versionOffset:]),
		expires: int64(binary.BigEndian.Uint64(b[expiryOffset:])),
	}
	if h.version == 0 {
		return header{}, nil, fmt.Errorf("%w: the file holds version 0", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(b[keyLenOffset:])
	if uint64(n) > uint64(len(b)-headerLen) {
		return header{}, nil, fmt.Errorf("%w: the key length %d runs past the end of the file", ErrCorrupt, n)
	}
	h.key = b[headerLen : headerLen+int(n)]
	return h, b[headerLen+int(n):], nil
}

// checkKey returns an error wrapping ErrCorrupt unless h records key. Two
// keys share a file only if their SHA-256 hashes collide, or if someone
// renamed or copied a file; either way neither key reads the other's data.
func (h header) checkKey(key string) error {
	if string(h.key) != key {
		return fmt.Errorf("%w: the file records another key", ErrCorrupt)
	}
	return nil
}

// expiry returns the Unix time in nanoseconds ttl after now, saturating at
// the largest time the format can hold.
func expiry(now time.Time, ttl time.Duration) int64 {
	n := now.UnixNano()
	if ttl > 0 && n > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return n + int64(ttl)
}
