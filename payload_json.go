package ginsession

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// With the JSON codec the stored payload is a JSON document, so that other
// programs can read sessions with any JSON parser:
//
//	{
//	  "ginsession": 1,                         // the document's format version
//	  "created": "2026-12-02T05:36:02.123456789Z",
//	  "marks": ["9f86d081884c7d65"],           // commit marks, hex; see maxMarks
//	  "values": {"cart": [1, 2], "user": "ann"},
//	  "internal": {"flash": "AQNvayE="}        // ginsession's own keys, base64
//	}
//
// Each value under "values" is the JSON the codec encoded for it. Payloads
// in the binary formats stay readable whatever the codec, and a session
// holding a value that is not JSON (one stored with Msgpack before the
// codec changed) is written in the binary format until that value goes.
const jsonDocV1 = 1

type jsonDoc struct {
	Format   int                        `json:"ginsession"`
	Created  time.Time                  `json:"created"`
	Marks    []string                   `json:"marks,omitempty"`
	Values   map[string]json.RawMessage `json:"values"`
	Internal map[string][]byte          `json:"internal,omitempty"`
}

// isJSONDoc reports whether b is a payload in the JSON document format.
func isJSONDoc(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// encodeJSONDoc returns the JSON document for the session, or ok false if
// a value is not JSON or the time cannot be written.
func encodeJSONDoc(created int64, marks []byte, values map[string][]byte) ([]byte, bool) {
	if len(marks) > maxMarks*markLen {
		marks = marks[len(marks)-maxMarks*markLen:]
	}
	doc := jsonDoc{Format: jsonDocV1, Created: time.Unix(0, created).UTC(), Values: make(map[string]json.RawMessage, len(values))}
	for ; len(marks) >= markLen; marks = marks[markLen:] {
		doc.Marks = append(doc.Marks, hex.EncodeToString(marks[:markLen]))
	}
	for k, v := range values {
		if checkKey(k) != nil {
			if doc.Internal == nil {
				doc.Internal = make(map[string][]byte)
			}
			doc.Internal[k[1:]] = v
			continue
		}
		if !json.Valid(v) {
			return nil, false
		}
		doc.Values[k] = v
	}
	b, err := json.Marshal(doc)
	return b, err == nil
}

// decodeJSONDoc parses a JSON document payload. The values alias b where
// they can.
func decodeJSONDoc(b []byte) (created int64, marks []byte, values map[string][]byte, err error) {
	var doc jsonDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, nil, nil, fmt.Errorf("%w: JSON document: %w", ErrCorrupt, err)
	}
	if doc.Format != jsonDocV1 {
		return 0, nil, nil, fmt.Errorf("%w: unknown JSON document format %d", ErrCorrupt, doc.Format)
	}
	if len(doc.Marks) > maxMarks {
		return 0, nil, nil, fmt.Errorf("%w: %d commit marks, more than %d", ErrCorrupt, len(doc.Marks), maxMarks)
	}
	for _, m := range doc.Marks {
		raw, err := hex.DecodeString(m)
		if err != nil || len(raw) != markLen {
			return 0, nil, nil, fmt.Errorf("%w: commit mark %q", ErrCorrupt, m)
		}
		marks = binary.BigEndian.AppendUint64(marks, binary.BigEndian.Uint64(raw))
	}
	values = make(map[string][]byte, len(doc.Values)+len(doc.Internal))
	for k, v := range doc.Values {
		if checkKey(k) != nil {
			return 0, nil, nil, fmt.Errorf("%w: reserved key %q among the values", ErrCorrupt, k)
		}
		values[k] = v
	}
	for k, v := range doc.Internal {
		if strings.HasPrefix(k, "\x00") {
			return 0, nil, nil, fmt.Errorf("%w: internal key %q", ErrCorrupt, k)
		}
		values["\x00"+k] = v
	}
	return doc.Created.UnixNano(), marks, values, nil
}

// encodePayload returns the payload to store for the session: a JSON
// document with the JSON codec, the binary envelope otherwise.
func (cfg *config) encodePayload(created int64, marks []byte, values map[string][]byte) []byte {
	if cfg.jsonDocs {
		if b, ok := encodeJSONDoc(created, marks, values); ok {
			return b
		}
	}
	return encodePayloadMarks(created, marks, values)
}
