package ginsession

import (
	"bytes"
	"fmt"

	"github.com/gin-gonic/gin"
)

// flashKey holds the pending flash messages, each encoded by the Codec,
// packed with packList.
const flashKey = "\x00flash"

// MaxFlashes is how many flash messages a session holds at most: AddFlash
// returns an error wrapping ErrTooLarge past it, until Flashes takes them.
const MaxFlashes = 32

// AddFlash queues a message for a later request to read with Flashes,
// typically the page a POST redirects to. Messages from concurrent requests
// are all kept, up to MaxFlashes; the session's MaxSize applies too.
func AddFlash[T any](c *gin.Context, msg T) error {
	s := from(c)
	raw, err := s.cfg.codec.Marshal(msg)
	if err != nil {
		return fmt.Errorf("ginsession: encoding flash: %w", err)
	}
	return s.changeOrFail(op{kind: opUpdate, key: flashKey, fn: func(old []byte, ok bool) ([]byte, bool, error) {
		items := flashItems(old, ok)
		if len(items) >= MaxFlashes {
			return nil, false, fmt.Errorf("%w: %d flash messages queued already", ErrTooLarge, len(items))
		}
		return packList(append(items, raw)), true, nil
	}})
}

// Flashes returns the queued messages that decode into a T, oldest first,
// and removes them from the session: each is read once. Messages of other
// types stay queued for a Flashes call with their type.
func Flashes[T any](c *gin.Context) []T {
	s := from(c)
	s.mu.Lock()
	err := s.loadLocked()
	raw, ok := s.value(flashKey)
	s.mu.Unlock()
	if err != nil {
		s.failLoad(err, false) // reported through the ErrorHandler
		return nil
	}
	if !ok {
		return nil
	}
	var out []T
	var taken [][]byte
	for _, item := range flashItems(raw, true) {
		var v T
		if s.cfg.codec.Unmarshal(item, &v) == nil {
			out = append(out, v)
			taken = append(taken, item)
		}
	}
	if len(taken) == 0 {
		return out
	}
	// Remove exactly the messages returned, so that one queued by a
	// concurrent request in the meantime survives a replayed commit.
	s.changeOrFail(op{kind: opUpdate, key: flashKey, fn: func(old []byte, ok bool) ([]byte, bool, error) { // loaded above
		items := flashItems(old, ok)
		rest := items[:0:0]
		pending := taken
		for _, it := range items {
			if len(pending) > 0 && bytes.Equal(it, pending[0]) {
				pending = pending[1:]
				continue
			}
			rest = append(rest, it)
		}
		if len(rest) == 0 {
			return nil, false, nil
		}
		return packList(rest), true, nil
	}})
	return out
}

// flashItems unpacks a stored flash queue; a damaged one counts as empty.
func flashItems(raw []byte, ok bool) [][]byte {
	if !ok {
		return nil
	}
	items, err := unpackList(raw)
	if err != nil {
		return nil
	}
	return items
}
