package ginsession

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store"
)

// Sessions that belong to a user.
//
// Login binds the session to a user: the session holds the user's ID, a
// handle (16 random bytes, base64url: stable, not secret, unrelated to the
// session ID) and the device's User-Agent, under ginsession's own key
// userKey. The user's index, one store entry under KeyPrefix + "user:" and
// a hash of the user ID, lists the user's sessions: handle, session ID,
// created, last seen, expiry, User-Agent. It is changed by
// compare-and-set, like a session, so concurrent logins and revocations
// lose nothing. Entries of sessions that expired or ended are pruned
// whenever the index is written, and dropped when UserSessions finds their
// session gone; no sweeper is needed.
//
// A revoked session is not deleted but overwritten with a tombstone (a
// payload holding only revokedKey), so that the next request that carries
// its ID is told to drop its cookie or token; the tombstone lives as long
// as the session could have.

const (
	userKey     = "\x00user"     // packList: user ID, handle, User-Agent, last seen (8 bytes, Unix seconds)
	revokedKey  = "\x00revoked"  // present in a tombstone
	rememberKey = "\x00remember" // one byte: 1 persistent cookie, 0 browser-session cookie
)

// DefaultMaxUserSessions is the default of Options.MaxUserSessions.
const DefaultMaxUserSessions = 50

// seenResolution is how stale a session's last-seen time may get before a
// request that uses it writes it again: at most one index write per
// session per minute.
const seenResolution = time.Minute

// maxUserAgent bounds the User-Agent kept for a session.
const maxUserAgent = 256

// ErrNoUser is returned by Login for an empty user ID.
var ErrNoUser = errors.New("ginsession: empty user ID")

// SessionInfo describes one of a user's sessions, as UserSessions lists
// them. It never holds the session ID.
type SessionInfo struct {
	// Handle names the session for RevokeSession. It is stable for the
	// session's life, not secret, and the session ID cannot be derived
	// from it.
	Handle    string
	Created   time.Time // when the user logged in with this session
	LastSeen  time.Time // the last request that used it, to the minute
	ExpiresAt time.Time // when it ends if not used again (approximate)
	Current   bool      // the session of the request that asked
	UserAgent string    // the device's User-Agent at Login
}

// binding is what a session bound to a user holds under userKey.
type binding struct {
	user, handle, userAgent string
	seen                    int64 // Unix seconds
}

func (b binding) encode() []byte {
	var seen [8]byte
	binary.BigEndian.PutUint64(seen[:], uint64(b.seen))
	return packList([][]byte{[]byte(b.user), []byte(b.handle), []byte(b.userAgent), seen[:]})
}

func decodeBinding(raw []byte) (binding, bool) {
	items, err := unpackList(raw)
	if err != nil || len(items) != 4 || len(items[3]) != 8 {
		return binding{}, false
	}
	return binding{string(items[0]), string(items[1]), string(items[2]), int64(binary.BigEndian.Uint64(items[3]))}, true
}

// indexEntry is one session in a user's index.
type indexEntry struct {
	id, handle, userAgent      string
	created, lastSeen, expires int64 // Unix seconds
}

func encodeIndex(user string, entries []indexEntry) []byte {
	items := make([][]byte, 0, 1+len(entries))
	items = append(items, []byte(user))
	for _, e := range entries {
		var t [24]byte
		binary.BigEndian.PutUint64(t[0:], uint64(e.created))
		binary.BigEndian.PutUint64(t[8:], uint64(e.lastSeen))
		binary.BigEndian.PutUint64(t[16:], uint64(e.expires))
		items = append(items, packList([][]byte{[]byte(e.id), []byte(e.handle), []byte(e.userAgent), t[:]}))
	}
	return packList(items)
}

func decodeIndex(user string, raw []byte) ([]indexEntry, error) {
	items, err := unpackList(raw)
	if err != nil || len(items) == 0 || string(items[0]) != user {
		return nil, fmt.Errorf("%w: user index", ErrCorrupt)
	}
	entries := make([]indexEntry, 0, len(items)-1)
	for _, it := range items[1:] {
		f, err := unpackList(it)
		if err != nil || len(f) != 4 || len(f[3]) != 24 {
			return nil, fmt.Errorf("%w: user index entry", ErrCorrupt)
		}
		entries = append(entries, indexEntry{
			id: string(f[0]), handle: string(f[1]), userAgent: string(f[2]),
			created:  int64(binary.BigEndian.Uint64(f[3][0:])),
			lastSeen: int64(binary.BigEndian.Uint64(f[3][8:])),
			expires:  int64(binary.BigEndian.Uint64(f[3][16:])),
		})
	}
	return entries, nil
}

// Users lists and ends users' sessions outside a request: from an admin
// tool, a password reset that arrives by e-mail, a background job. Build
// it from the Options the middleware uses (the same Store and KeyPrefix).
// The functions of the same names that take a *gin.Context do the same
// within a request.
type Users struct {
	cfg *config
}

// NewUsers returns a Users for the sessions of the middleware built from
// opts. It panics, as New does, on options a program cannot run with, and
// on a nil Store (an in-process memstore of its own would hold nothing).
func NewUsers(opts Options) *Users {
	if opts.Store == nil {
		panic("ginsession: NewUsers needs the Options.Store of the middleware")
	}
	return &Users{cfg: newConfig(opts)}
}

func (cfg *config) users() *Users { return &Users{cfg: cfg} }

// indexKey is the store key of user's index.
func (cfg *config) indexKey(user string) string {
	sum := sha256.Sum256([]byte(user))
	return cfg.prefix + "user:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// updateIndex applies fn to user's index by compare-and-set, after pruning
// the entries past their expiry, and keeps at most MaxUserSessions of
// them; it returns the entries fn or the cap removed.
func (u *Users) updateIndex(ctx context.Context, user string, fn func([]indexEntry) []indexEntry) (removed []indexEntry, err error) {
	cfg := u.cfg
	key := cfg.indexKey(user)
	for attempt := 1; ; attempt++ {
		data, version, err := cfg.store.Load(ctx, key, 0)
		var entries []indexEntry
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("%w: user index: %w", ErrUnavailable, err)
		default:
			if entries, err = decodeIndex(user, data); err != nil {
				entries = nil // rebuilt from the sessions that log in again
			}
		}
		now := cfg.now().Unix()
		before := slices.Clone(entries)
		entries = slices.DeleteFunc(entries, func(e indexEntry) bool { return e.expires <= now })
		entries = fn(entries)
		if len(entries) > cfg.maxUserSessions {
			// The least recently seen go; of two seen in the same second,
			// the one added first.
			slices.Reverse(entries)
			slices.SortStableFunc(entries, func(a, b indexEntry) int { return cmp.Compare(b.lastSeen, a.lastSeen) })
			entries = entries[:cfg.maxUserSessions]
		}
		removed = removed[:0]
		for _, e := range before {
			if !slices.ContainsFunc(entries, func(k indexEntry) bool { return k.handle == e.handle }) {
				removed = append(removed, e)
			}
		}
		ttl := time.Minute
		for _, e := range entries {
			ttl = max(ttl, time.Duration(e.expires-now)*time.Second)
		}
		_, err = cfg.store.Save(ctx, key, encodeIndex(user, entries), version, ttl)
		if err == nil {
			return removed, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("%w: user index: %w", ErrUnavailable, err)
		}
		if attempt >= cfg.attempts {
			return nil, fmt.Errorf("%w: user index, after %d attempts", ErrTooManyConflicts, attempt)
		}
		backoff(attempt)
	}
}

// sessionEnd is when a session last seen at seen and created at created ends
// if not used again.
func (cfg *config) sessionEnd(created, seen int64) int64 {
	end := seen + int64(cfg.lifetime/time.Second)
	if cfg.absolute > 0 {
		end = min(end, created+int64(cfg.absolute/time.Second))
	}
	return end
}

// UserSessions lists user's live sessions, most recently seen first. It
// costs one store round trip for the index and one per session listed (a
// read that does not renew it), and one more to write the index back if
// it found sessions that ended.
func (u *Users) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	return u.list(ctx, user, "")
}

func (u *Users) list(ctx context.Context, user, current string) ([]SessionInfo, error) {
	cfg := u.cfg
	data, _, err := cfg.store.Load(ctx, cfg.indexKey(user), 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: user index: %w", ErrUnavailable, err)
	}
	entries, err := decodeIndex(user, data)
	if err != nil {
		return nil, nil
	}
	var infos []SessionInfo
	var gone []string
	for _, e := range entries {
		b, err := u.boundSession(ctx, e.id)
		if err != nil {
			return nil, err
		}
		if b == nil || b.user != user || b.handle != e.handle {
			gone = append(gone, e.handle)
			continue
		}
		seen := max(e.lastSeen, b.seen)
		infos = append(infos, SessionInfo{
			Handle: e.handle, Created: time.Unix(e.created, 0), LastSeen: time.Unix(seen, 0),
			ExpiresAt: time.Unix(cfg.sessionEnd(e.created, seen), 0), Current: e.handle == current, UserAgent: e.userAgent,
		})
	}
	if len(gone) > 0 {
		u.updateIndex(ctx, user, func(es []indexEntry) []indexEntry { //nolint: errors only delay the pruning
			return slices.DeleteFunc(es, func(e indexEntry) bool { return slices.Contains(gone, e.handle) })
		})
	}
	slices.SortStableFunc(infos, func(a, b SessionInfo) int { return b.LastSeen.Compare(a.LastSeen) })
	return infos, nil
}

// boundSession returns the binding of the live session id, nil if there
// is none (ended, revoked, or bound to nobody).
func (u *Users) boundSession(ctx context.Context, id string) (*binding, error) {
	data, _, err := u.cfg.store.Load(ctx, u.cfg.prefix+id, 0)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: load: %w", ErrUnavailable, err)
	}
	_, values, err := decodePayload(data)
	if err != nil {
		return nil, nil
	}
	raw, ok := values[userKey]
	if !ok || values[revokedKey] != nil {
		return nil, nil
	}
	b, ok := decodeBinding(raw)
	if !ok {
		return nil, nil
	}
	return &b, nil
}

// RevokeSession ends user's session named handle: its next request, on
// any instance, finds an empty session and is told to drop its cookie or
// token. Ending a session that already ended is not an error. It costs
// four round trips (the index by compare-and-set, then the session).
func (u *Users) RevokeSession(ctx context.Context, user, handle string) error {
	_, err := u.revoke(ctx, user, func(e indexEntry) bool { return e.handle == handle })
	return err
}

// RevokeUserSessions ends all of user's sessions but the one named
// keepHandle ("" for none), "log out everywhere", and returns how many
// live sessions it ended. It costs two round trips for the index and two
// per session.
func (u *Users) RevokeUserSessions(ctx context.Context, user, keepHandle string) (int, error) {
	return u.revoke(ctx, user, func(e indexEntry) bool { return e.handle != keepHandle })
}

func (u *Users) revoke(ctx context.Context, user string, match func(indexEntry) bool) (int, error) {
	removed, err := u.updateIndex(ctx, user, func(es []indexEntry) []indexEntry { return slices.DeleteFunc(es, match) })
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range removed {
		ended, err := u.tombstone(ctx, e.id, user, e.handle)
		if err != nil {
			errs = append(errs, err)
		}
		if ended {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// tombstone replaces the session id, if it is still bound to user and
// handle, with a tombstone, and reports whether it did.
func (u *Users) tombstone(ctx context.Context, id, user, handle string) (bool, error) {
	cfg := u.cfg
	key := cfg.prefix + id
	for attempt := 1; ; attempt++ {
		data, version, err := cfg.store.Load(ctx, key, 0)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: load: %w", ErrUnavailable, err)
		}
		_, values, err := decodePayload(data)
		if err != nil {
			return false, nil
		}
		b, ok := decodeBinding(values[userKey])
		if !ok || b.user != user || b.handle != handle || values[revokedKey] != nil {
			return false, nil
		}
		now := cfg.now()
		_, err = cfg.store.Save(ctx, key, encodePayload(now.UnixNano(), map[string][]byte{revokedKey: {1}}), version, cfg.lifetime)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, fmt.Errorf("%w: save: %w", ErrUnavailable, err)
		}
		if attempt >= cfg.attempts {
			return false, fmt.Errorf("%w: revoking a session", ErrTooManyConflicts)
		}
		backoff(attempt)
	}
}

// newHandle returns a fresh session handle.
func newHandle() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// binding returns the session's binding, if it is bound. s.mu is held.
func (s *session) binding() (binding, bool) {
	raw, ok := s.value(userKey)
	if !ok {
		return binding{}, false
	}
	return decodeBinding(raw)
}

// Login is what a handler calls when a user signs in: it regenerates the
// session ID, as Regenerate does, binds the session to userID (moving it
// from the user it was bound to, if any), and adds it to the user's index
// with the request's User-Agent. The session keeps its data, and is saved
// at once (so a change made after Login is another write). Login costs
// what Regenerate costs plus two round trips for the index (four when it
// moves the session from another user).
func Login(c *gin.Context, userID string) error {
	if userID == "" {
		return ErrNoUser
	}
	if err := Regenerate(c); err != nil {
		return err
	}
	s := from(c)
	s.mu.Lock()
	old, wasBound := s.binding()
	now := s.cfg.now()
	b := binding{user: userID, handle: newHandle(), userAgent: truncate(s.c.Request.UserAgent(), maxUserAgent), seen: now.Unix()}
	id, created := s.id, s.created/int64(time.Second)
	s.mu.Unlock()
	if err := s.changeOrFail(op{kind: opSet, key: userKey, raw: b.encode()}); err != nil {
		return err
	}
	// The session is stored before the index lists it: a "log out
	// everywhere" running meanwhile either lists it and ends it, or runs
	// before it is listed; never does it miss a session that stays alive.
	if err := Commit(c); err != nil {
		return err
	}
	u := s.cfg.users()
	ctx := s.c.Request.Context()
	if wasBound && old.user != userID {
		if _, err := u.updateIndex(ctx, old.user, func(es []indexEntry) []indexEntry {
			return slices.DeleteFunc(es, func(e indexEntry) bool { return e.handle == old.handle })
		}); err != nil {
			return err
		}
	}
	entry := indexEntry{id: id, handle: b.handle, userAgent: b.userAgent, created: created, lastSeen: b.seen, expires: s.cfg.sessionEnd(created, b.seen)}
	removed, err := u.updateIndex(ctx, userID, func(es []indexEntry) []indexEntry {
		if wasBound && old.user == userID {
			es = slices.DeleteFunc(es, func(e indexEntry) bool { return e.handle == old.handle })
		}
		return append(es, entry)
	})
	if err != nil {
		return err
	}
	for _, e := range removed { // past MaxUserSessions, or expired
		if e.handle != old.handle {
			if _, err := u.tombstone(ctx, e.id, userID, e.handle); err != nil {
				return err
			}
		}
	}
	return nil
}

// UserID returns the user the session is bound to by Login, or "".
func UserID(c *gin.Context) string {
	s := from(c)
	if s.load() != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := s.binding()
	return b.user
}

// UserSessions lists userID's live sessions, marking the request's own as
// Current; see Users.UserSessions.
func UserSessions(c *gin.Context, userID string) ([]SessionInfo, error) {
	return from(c).cfg.users().list(c.Request.Context(), userID, currentHandle(c, userID))
}

// RevokeSession ends userID's session named handle; see
// Users.RevokeSession. Revoking the request's own session ends it as
// Destroy does.
func RevokeSession(c *gin.Context, userID, handle string) error {
	if handle == currentHandle(c, userID) {
		return Destroy(c)
	}
	return from(c).cfg.users().RevokeSession(c.Request.Context(), userID, handle)
}

// RevokeUserSessions ends all of userID's sessions, but the request's own
// if keepCurrent, and returns how many ended ("log out everywhere"); see
// Users.RevokeUserSessions. Without keepCurrent the request's own session
// ends as with Destroy (and counts if it was bound to userID).
func RevokeUserSessions(c *gin.Context, userID string, keepCurrent bool) (int, error) {
	current := currentHandle(c, userID)
	n, err := from(c).cfg.users().RevokeUserSessions(c.Request.Context(), userID, current)
	if err != nil || keepCurrent || current == "" {
		return n, err
	}
	return n + 1, Destroy(c)
}

// currentHandle is the handle of the request's session if it is bound to
// user, or "".
func currentHandle(c *gin.Context, user string) string {
	s := from(c)
	if s.load() != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.binding(); ok && b.user == user {
		return b.handle
	}
	return ""
}

// Remember chooses this session's cookie: persistent, lasting Lifetime
// from the last use (true), or gone when the browser closes (false).
// The choice is kept in the session, so it survives Regenerate and Login;
// without it, Options.Cookie.BrowserSession decides. The cookie is sent
// again in this response.
func Remember(c *gin.Context, remember bool) error {
	s := from(c)
	v := byte(0)
	if remember {
		v = 1
	}
	if err := s.changeOrFail(op{kind: opSet, key: rememberKey, raw: []byte{v}}); err != nil {
		return err
	}
	s.mu.Lock()
	s.sendCookie = true
	s.mu.Unlock()
	return nil
}

// remembered returns the session's Remember choice, if it made one.
// s.mu is held.
func (s *session) remembered() (persistent, ok bool) {
	raw, ok := s.value(rememberKey)
	if !ok || len(raw) != 1 {
		return false, false
	}
	return raw[0] == 1, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s[:n]), nil))
}

// revoked reports whether a loaded payload is a tombstone. values are its
// decoded values, or nil if it was not decoded.
func revoked(data []byte, values map[string][]byte) bool {
	if values != nil {
		_, ok := values[revokedKey]
		return ok
	}
	_, ok := payloadValue(data, revokedKey)
	return ok
}

// noteSeen records, once per seenResolution, that a bound session was
// used: in the session, committed with it, and in its user's index after
// the commit. s.mu is held.
func (s *session) noteSeen() {
	s.seenDue = false
	b, ok := s.binding()
	if !ok {
		return
	}
	b.seen = s.cfg.now().Unix()
	o := op{kind: opSet, key: userKey, raw: b.encode()}
	if changed, err := s.apply(&o); err == nil && changed {
		s.dirty = true
		s.ops = append(s.ops, o)
		s.seen = &b
	}
}

// updateUserIndex brings the index up to date after a commit: the last
// seen time of a session that noteSeen marked, or the removal of one that
// Destroy ended. Its errors only delay what UserSessions shows, so they
// are logged. s.mu is held.
func (s *session) updateUserIndex(ctx context.Context) {
	u := s.cfg.users()
	if b := s.seen; b != nil {
		s.seen = nil
		_, err := u.updateIndex(ctx, b.user, func(es []indexEntry) []indexEntry {
			for i := range es {
				if es[i].handle == b.handle {
					es[i].lastSeen = b.seen
					es[i].expires = s.cfg.sessionEnd(es[i].created, b.seen)
				}
			}
			return es
		})
		if err != nil {
			s.cfg.log.Warn("ginsession: user index not updated", "err", err)
		}
	}
	if b := s.unbind; b != nil {
		s.unbind = nil
		_, err := u.updateIndex(ctx, b.user, func(es []indexEntry) []indexEntry {
			return slices.DeleteFunc(es, func(e indexEntry) bool { return e.handle == b.handle })
		})
		if err != nil {
			s.cfg.log.Warn("ginsession: user index not updated", "err", err)
		}
	}
}
