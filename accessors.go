package ginsession

import (
	"fmt"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
)

// The accessors below are used from a handler running behind the
// middleware, on the handler's goroutine (or on a c.Copy() of its context).
// The first one called loads the session from the store. If the store
// fails, the ErrorHandler runs once (by default: 503), reads find nothing,
// and changes return an error wrapping ErrUnavailable and are not saved.

// Get returns the value stored under key, decoded into a T. It reports
// false when the key is absent, when the stored value cannot be decoded
// into a T, and when the session could not be loaded.
func Get[T any](c *gin.Context, key string) (T, bool) {
	v, ok, _ := lookup[T](c, key, false)
	return v, ok
}

// Lookup is Get for a handler that must know whether the session could be
// loaded: it returns an error wrapping ErrUnavailable instead of running
// the ErrorHandler, and leaves the response to the handler.
func Lookup[T any](c *gin.Context, key string) (T, bool, error) {
	return lookup[T](c, key, true)
}

func lookup[T any](c *gin.Context, key string, handlerTakesErr bool) (value T, ok bool, err error) {
	s := from(c)
	s.mu.Lock()
	err = s.loadLocked()
	raw, found := s.value(key)
	s.mu.Unlock()
	if err != nil {
		return value, false, s.failLoad(err, handlerTakesErr)
	}
	if !found {
		return value, false, nil
	}
	if s.cfg.codec.Unmarshal(raw, &value) != nil {
		var zero T
		return zero, false, nil
	}
	return value, true, nil
}

// Load loads the session now, if no accessor has yet, and returns an error
// wrapping ErrUnavailable if the store could not be read. Like Lookup, it
// leaves the response to the handler instead of running the ErrorHandler.
func Load(c *gin.Context) error {
	s := from(c)
	s.mu.Lock()
	err := s.loadLocked()
	s.mu.Unlock()
	if err != nil {
		return s.failLoad(err, true)
	}
	return nil
}

// Set stores value under key. The value is encoded at once, so later
// changes to it do not reach the session. Setting a value equal to the
// stored one writes nothing.
func Set(c *gin.Context, key string, value any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s := from(c)
	raw, err := s.cfg.codec.Marshal(value)
	if err != nil {
		return fmt.Errorf("ginsession: encoding %q: %w", key, err)
	}
	return s.changeOrFail(op{kind: opSet, key: key, raw: raw})
}

// Delete removes key from the session.
func Delete(c *gin.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return from(c).changeOrFail(op{kind: opDelete, key: key})
}

// Clear removes every key, flash messages included. A session left empty
// at commit is deleted from the store and its cookie expired.
func Clear(c *gin.Context) error {
	return from(c).changeOrFail(op{kind: opClear})
}

// Update replaces the value under key with fn applied to it, atomically
// with respect to other requests of the same session: if another request
// commits first, fn runs again on the value that request stored. fn gets
// the zero T when the key is absent or holds something that is not a T.
//
// fn may therefore run more than once, and must be free of side effects
// and must not call other ginsession functions.
func Update[T any](c *gin.Context, key string, fn func(T) T) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s := from(c)
	codec := s.cfg.codec
	return s.changeOrFail(op{kind: opUpdate, key: key, fn: func(old []byte, ok bool) ([]byte, bool, error) {
		var v T
		if ok && codec.Unmarshal(old, &v) != nil {
			var zero T
			v = zero
		}
		raw, err := codec.Marshal(fn(v))
		if err != nil {
			return nil, false, fmt.Errorf("ginsession: encoding %q: %w", key, err)
		}
		return raw, true, nil
	}})
}

// changeOrFail applies o, reporting a load failure through the
// ErrorHandler.
func (s *session) changeOrFail(o op) error {
	err, loadFailed := s.change(o)
	if loadFailed {
		return s.failLoad(err, false)
	}
	return err
}

// Regenerate gives the session a new ID and keeps its data; the entry
// under the old ID is deleted at commit. Call it whenever the user's
// privileges change, at login above all, so that an ID an attacker
// planted before login is worthless after it. It also restarts the
// absolute timeout. It returns ErrHeadersSent once the response has
// started, since the new cookie could no longer be sent.
func Regenerate(c *gin.Context) error {
	s := from(c)
	s.mu.Lock()
	s.touch() // before looking at done: see session.active
	if s.cfg.disabled {
		s.mu.Unlock()
		return ErrSessionsDisabled
	}
	if s.headersSent.Load() || s.done.Load() {
		s.mu.Unlock()
		return ErrHeadersSent
	}
	if err := s.loadLocked(); err != nil {
		s.mu.Unlock()
		return s.failLoad(err, false)
	}
	if s.stored {
		s.deletes = append(s.deletes, s.id)
	}
	s.id, s.stored, s.version = newID(), false, 0
	s.created = s.cfg.now().UnixNano()
	s.ops = s.ops[:0]
	s.rewrite = true
	s.mu.Unlock()
	return nil
}

// Destroy ends the session: its entry is deleted from the store and the
// browser is told to drop the cookie. The request goes on with a new, empty
// session, so a handler may still Set values (they start a new session).
// A session not loaded yet is loaded first (one round trip), so that a
// session bound by Login leaves its user's index; Destroy works even when
// the session cannot be loaded. It returns ErrRequestDone once the
// middleware has finished with the request.
func Destroy(c *gin.Context) error {
	s := from(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touch() // before looking at done: see session.active
	if s.done.Load() {
		return ErrRequestDone
	}
	if s.cfg.disabled {
		return ErrSessionsDisabled
	}
	if s.state == notLoaded {
		// Load it, to know which user's index lists it and which cookie
		// attributes to expire; if the store fails, what the cookie names
		// is still deleted, unread.
		_ = s.loadLocked()
	}
	switch s.state {
	case loaded:
		s.keepExpirySuffix()
		if b, ok := s.binding(); ok && s.stored {
			s.unbind = &b
		}
		if s.stored {
			s.deletes = append(s.deletes, s.id)
		}
	default: // the load failed: delete what the cookie names, unread
		if id := s.cfg.idFromRequest(s.c.Request); id != "" {
			s.deletes = append(s.deletes, id)
		}
		s.state, s.loadErr = loaded, nil
	}
	s.reset(s.cfg.now())
	s.expireCookie = true
	return nil
}

// ID returns the session's ID, or "" if the session has none yet (nothing
// has been stored). Never log it or show it whole: it is the user's key.
func ID(c *gin.Context) string {
	s := from(c)
	if s.load() != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Keys returns the session's keys in sorted order, without ginsession's
// own (flash messages).
func Keys(c *gin.Context) []string {
	s := from(c)
	if s.load() != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decodeValues()
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		if checkKey(k) == nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// ExpiresAt returns when the session will end if it is not used again, or
// the zero time if there is no stored session.
func ExpiresAt(c *gin.Context) time.Time {
	s := from(c)
	if s.load() != nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stored && s.empty() {
		return time.Time{}
	}
	now := s.cfg.now()
	return now.Add(s.ttl(now))
}

// load loads the session, reporting a failure through the ErrorHandler.
func (s *session) load() error {
	s.mu.Lock()
	err := s.loadLocked()
	s.mu.Unlock()
	if err != nil {
		return s.failLoad(err, false)
	}
	return nil
}

func checkKey(key string) error {
	if len(key) > 0 && key[0] == 0 {
		return ErrReservedKey
	}
	return nil
}
