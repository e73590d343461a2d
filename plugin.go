// Package ginsession gives Gin applications server-side sessions.
//
// Install the middleware once, then use the typed accessors in handlers:
//
//	r := gin.New()
//	r.Use(ginsession.New(ginsession.Options{Store: redisstore.New(rdb)}))
//	r.POST("/cart", func(c *gin.Context) {
//		ginsession.Update(c, "cart", func(cart []string) []string {
//			return append(cart, c.PostForm("item"))
//		})
//	})
//
// There is no Save: the session is loaded from the store the first time a
// handler touches it, and whatever changed is committed just before the
// response headers are sent (or when the handler returns, for a response
// with no body). A request that never touches the session costs nothing.
// Commits are compare-and-set: when two requests of one session change it
// at the same time, the later commit re-applies its own changes on top of
// the earlier one instead of overwriting it.
package ginsession

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store"
)

// New returns the session middleware. It validates opts once and panics,
// with a message naming the field, on a configuration a program cannot run
// with.
func New(opts Options) gin.HandlerFunc {
	return newConfig(opts).handle
}

// contextKey is the gin.Context key under which the session is kept.
type contextKey struct{}

type loadState uint8

const (
	notLoaded loadState = iota
	loaded
	failed
)

// session is one request's view of one session. Its fields are guarded
// by mu; user code (Update functions, the ErrorHandler) never runs with mu
// held except Update functions, which the docs forbid to call back in.
//
// Every request allocates a session, most of which is in sessionData,
// allocated when a handler first touches the session: a request that
// never does costs a small struct.
type session struct {
	w     hookWriter
	cfg   *config
	c     *gin.Context
	outer *session // the session of a middleware installed before this one
	mu    sync.Mutex

	state    loadState
	reported bool // the ErrorHandler has run, or the handler took the error

	// active is set, with mu held, when the session is first touched.
	// Until then the writer hooks and finish have nothing to commit and
	// skip mu, which is why these flags are atomic; they are otherwise
	// read and written with mu held. A path that touches the session sets
	// active before it looks at done, and finish sets done before it looks
	// at active, so one of the two always sees the other.
	active      atomic.Bool
	headersSent atomic.Bool // no cookie can be set any more
	done        atomic.Bool // the middleware has finished with the request
	replaced    atomic.Bool // the ErrorHandler sent the response; discard the handler's

	*sessionData // nil until the session is first touched; see touch
}

// sessionData is the part of a session that only a request that uses it
// needs.
type sessionData struct {
	loadErr error

	id      string // current ID; "" while the session has none
	stored  bool   // the store holds id at version
	version uint64
	created int64  // Unix nanoseconds
	marks   []byte // the stored commit marks; see maxMarks
	values  map[string][]byte

	loadedAt time.Time // when the session was loaded (or reset)
	raw      []byte    // the loaded payload, until values are decoded from it; values is nil meanwhile
	ops      []op      // this request's changes since the last commit

	dirty      bool     // some op changed the data since the last commit
	rewrite    bool     // id is new: write the whole session under it
	deletes    []string // IDs whose entries go at the next commit
	sendCookie bool     // (re)send the cookie for id

	expireCookie bool   // tell the browser to drop its cookie (Destroy, emptied)
	expireSuffix string // the attributes of the cookie to drop, if not the default
	cookieIdx    int    // index of our Set-Cookie header line, or -1
	idSent       bool   // the ID header (Options.Header) was set in the response

	keyID, lastKey string // the last ID key was asked for, and its store key

	stats commitStats // what the last commit did, for the Observer

	seenDue bool     // a bound session whose last-seen time is to be written
	seen    *binding // written by this commit: update the user's index after it
	unbind  *binding // a bound session ended by Destroy: drop it from its user's index

	// Room for the common case, so that it allocates nothing more: one
	// change to replay, one Set-Cookie line.
	opsBuf      [1]op
	cookieLine  [1]string
	markBuf     [maxMarks * markLen]byte // the marks being written
	storedMarks [maxMarks * markLen]byte // backs marks after a commit
}

// touch allocates the session's data on first use.
func (s *session) touch() {
	if s.sessionData == nil {
		d := &sessionData{cookieIdx: -1}
		d.ops = d.opsBuf[:0]
		s.sessionData = d
		s.active.Store(true)
	}
}

type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opClear
	opUpdate
)

// op is one key-level change, kept so that a commit that loses a race can
// replay it on the latest stored data.
type op struct {
	kind opKind
	key  string
	raw  []byte                                                       // opSet
	fn   func(old []byte, ok bool) (raw []byte, keep bool, err error) // opUpdate
}

func (cfg *config) handle(c *gin.Context) {
	s, orig := cfg.install(c)
	finished := false
	defer func() {
		c.Writer = orig
		if !finished { // a handler panicked: commit nothing
			s.done.Store(true)
		}
	}()
	c.Next()
	finished = true
	s.finish()
}

// install puts a session for the request in c, with its writer hook, and
// returns it and the writer it wraps.
func (cfg *config) install(c *gin.Context) (*session, gin.ResponseWriter) {
	s := &session{cfg: cfg, c: c}
	orig := c.Writer
	s.w = hookWriter{ResponseWriter: orig, s: s}
	s.headersSent.Store(orig.Written())
	c.Writer = &s.w
	if outer, ok := c.Get(contextKey{}); ok { // another ginsession middleware
		s.outer, _ = outer.(*session)
	}
	c.Set(contextKey{}, s)
	return s, orig
}

// NewMany returns one middleware that does what New(opts[0]), ...,
// New(opts[len(opts)-1]) installed in that order would: a session for each,
// each with its own cookie (or header), which Named tells apart; the
// accessors on the *gin.Context use the last. It panics as New does, and
// if two of them carry the ID under the same name.
func NewMany(opts ...Options) gin.HandlerFunc {
	cfgs := make([]*config, len(opts))
	seen := make(map[string]bool, len(opts))
	for i, o := range opts {
		cfgs[i] = newConfig(o)
		if name := cfgs[i].idName(); seen[name] {
			panic(fmt.Sprintf("ginsession: NewMany: two sessions carried by %q", name))
		} else {
			seen[name] = true
		}
	}
	return func(c *gin.Context) {
		sessions := make([]*session, len(cfgs))
		origs := make([]gin.ResponseWriter, len(cfgs))
		for i, cfg := range cfgs {
			sessions[i], origs[i] = cfg.install(c)
		}
		finished := false
		defer func() {
			c.Writer = origs[0]
			if !finished { // a handler panicked: commit nothing
				for _, s := range sessions {
					s.done.Store(true)
				}
			}
		}()
		c.Next()
		finished = true
		for i := len(sessions) - 1; i >= 0; i-- { // innermost first, as nested middlewares return
			c.Writer = origs[i]
			sessions[i].finish()
		}
	}
}

// from returns the request's session. Using an accessor without the
// middleware is a programming error, reported as such.
func from(c *gin.Context) *session {
	if v, ok := c.Get(contextKey{}); ok {
		if s, ok := v.(*session); ok {
			return s
		}
	}
	panic("ginsession: no session on this gin.Context; install the middleware with router.Use(ginsession.New(opts))")
}

// key returns the store key for id. A request that changes its session
// loads and saves the same key, so the last one is kept.
func (s *session) key(id string) string {
	if id != s.keyID || s.lastKey == "" {
		s.keyID, s.lastKey = id, s.cfg.prefix+id
	}
	return s.lastKey
}

// ttl is how long the session may live from now: Lifetime, capped by the
// absolute timeout.
func (s *session) ttl(now time.Time) time.Duration {
	d := s.cfg.lifetime
	if s.cfg.absolute > 0 {
		if rest := time.Unix(0, s.created).Add(s.cfg.absolute).Sub(now); rest < d {
			d = rest
		}
	}
	return d
}

// reset makes s an empty session without an ID.
func (s *session) reset(now time.Time) {
	s.touch()
	s.id, s.stored, s.version = "", false, 0
	s.created, s.loadedAt = now.UnixNano(), now
	s.values, s.raw, s.marks = nil, nil, nil
	s.ops = s.ops[:0]
	s.dirty, s.rewrite, s.sendCookie = false, false, false
}

// loadLocked loads the session on first use. It returns a non-nil error
// only when the store failed: an unknown, expired or undecodable session
// becomes a fresh one, and the client's ID is never adopted.
func (s *session) loadLocked() error {
	switch s.state {
	case loaded:
		return nil
	case failed:
		return s.loadErr
	}
	now := s.cfg.now()
	s.reset(now)
	if s.cfg.disabled {
		s.state = loaded
		return nil
	}
	cookieID := s.cfg.idFromRequest(s.c.Request)
	if cookieID == "" {
		s.state = loaded
		return nil
	}
	renew := s.cfg.lifetime
	if !s.cfg.renewOnRead {
		renew = 0 // leave the expiry as the last write set it
	}
	ctx := s.c.Request.Context()
	var done func(LoadInfo)
	if s.cfg.observer != nil {
		ctx, done = s.cfg.observer.StartLoad(ctx)
	}
	if s.cfg.storeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.storeTimeout)
		defer cancel()
	}
	data, version, err := s.cfg.store.Load(ctx, s.key(cookieID), renew)
	info := s.useLoaded(cookieID, data, version, err, now)
	if done != nil {
		info.Session = s.cfg.idName()
		done(info)
	}
	if info.Outcome == LoadError {
		return s.loadErr
	}
	return nil
}

// useLoaded makes the session what the store's Load of cookieID returned,
// and says what that was.
func (s *session) useLoaded(cookieID string, data []byte, version uint64, err error, now time.Time) LoadInfo {
	if errors.Is(err, store.ErrNotFound) {
		s.state = loaded
		return LoadInfo{Outcome: LoadMiss}
	}
	if errors.Is(err, store.ErrCorrupt) {
		// The store holds something it did not write: leave it alone, as
		// below, and start afresh under a new ID.
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		s.cfg.log.Warn("ginsession: starting a fresh session", "err", err)
		s.c.Error(err) // recorded for the application's error middleware
		s.state = loaded
		return LoadInfo{Outcome: LoadCorrupt, Err: err}
	}
	if err != nil {
		s.state = failed
		s.loadErr = fmt.Errorf("%w: load: %w", ErrUnavailable, err)
		return LoadInfo{Outcome: LoadError, Err: s.loadErr}
	}
	s.state = loaded
	var created int64
	var n int
	var lazy bool
	var values map[string][]byte
	var marks []byte
	if isJSONDoc(data) {
		created, marks, values, err = decodeJSONDoc(data)
	} else {
		created, n, lazy, err = scanPayload(data)
		if err == nil && !lazy {
			created, values, err = decodePayload(data)
		}
		if err == nil {
			marks = payloadMarks(data)
		}
	}
	if err != nil {
		// Leave the entry alone (a newer version of this package may have
		// written it) and start afresh under a new ID.
		s.cfg.log.Warn("ginsession: starting a fresh session", "err", err)
		s.c.Error(err) // recorded for the application's error middleware
		return LoadInfo{Outcome: LoadCorrupt, Bytes: len(data), Err: err}
	}
	if s.cfg.absolute > 0 && now.Sub(time.Unix(0, created)) >= s.cfg.absolute {
		s.deletes = append(s.deletes, cookieID)
		return LoadInfo{Outcome: LoadExpired, Bytes: len(data)}
	}
	if revoked(data, values) {
		// Ended by RevokeSession: the client is told to drop its ID.
		s.expireCookie = true
		return LoadInfo{Outcome: LoadMiss, Bytes: len(data)}
	}
	s.id, s.stored, s.version = cookieID, true, version
	s.created, s.values, s.marks = created, values, marks
	if lazy && n > 0 {
		s.raw = data // decoded on the first change; reads look values up in it
	}
	if b, ok := s.binding(); ok && now.Unix()-b.seen >= int64(seenResolution/time.Second) {
		s.seenDue = true
	}
	// Rolling expiry: the browser's copy moves too, if it has an expiry.
	// A header carries no expiry: it is sent only when the ID changes.
	s.sendCookie = s.cfg.renewOnRead && s.cfg.header == "" && (s.cfg.persistent || s.hasCookieOptions())
	return LoadInfo{Outcome: LoadHit, Bytes: len(data)}
}

// apply performs o on the in-memory data and reports whether it changed
// anything.
func (s *session) apply(o *op) (bool, error) {
	s.decodeValues()
	old, had := s.values[o.key]
	switch o.kind {
	case opSet:
		s.put(o.key, o.raw)
		return !had || !s.cfg.sameValue(old, o.raw), nil
	case opDelete:
		delete(s.values, o.key)
		return had, nil
	case opClear:
		n := len(s.values)
		clear(s.values)
		return n > 0, nil
	default:
		raw, keep, err := o.fn(old, had)
		if err != nil {
			return false, err
		}
		if !keep {
			delete(s.values, o.key)
			return had, nil
		}
		s.put(o.key, raw)
		return !had || !s.cfg.sameValue(old, raw), nil
	}
}

// value returns the encoded value stored under key.
func (s *session) value(key string) ([]byte, bool) {
	if s.raw != nil {
		return payloadValue(s.raw, key)
	}
	v, ok := s.values[key]
	return v, ok
}

// empty reports whether the session holds no values.
func (s *session) empty() bool { return s.raw == nil && len(s.values) == 0 }

// decodeValues makes s.values hold the session's data, decoding the
// loaded payload if that has not been done yet.
func (s *session) decodeValues() {
	if s.raw == nil {
		return
	}
	_, values, err := decodePayload(s.raw)
	if err != nil { // scanPayload accepted it at load
		panic("ginsession: a checked payload does not decode: " + err.Error())
	}
	s.values, s.raw = values, nil
}

func (s *session) put(key string, raw []byte) {
	if s.values == nil {
		s.values = make(map[string][]byte)
	}
	s.values[key] = raw
}

// change loads the session if needed, applies o and records it. It
// reports whether an error is a load failure.
func (s *session) change(o op) (err error, loadFailed bool) {
	s.mu.Lock()
	defer s.mu.Unlock() // o.fn is user code and may panic
	s.touch()           // before looking at done: see session.active
	if s.done.Load() {
		return ErrRequestDone, false
	}
	if s.cfg.disabled {
		return ErrSessionsDisabled, false
	}
	if err := s.loadLocked(); err != nil {
		return err, true
	}
	s.decodeValues()
	if o.kind == opClear {
		s.keepExpirySuffix()
	}
	old, had := s.values[o.key]
	changed, err := s.apply(&o)
	if err != nil {
		return err, false
	}
	if o.kind == opSet || o.kind == opUpdate {
		// Only a change that makes the session larger is refused: one
		// that shrinks a session already past MaxSize goes through.
		v, has := s.values[o.key]
		grew := has && (!had || len(v) > len(old))
		if err := s.checkSize(); err != nil && grew {
			if had { // take the change back: nothing is stored
				s.values[o.key] = old
			} else {
				delete(s.values, o.key)
			}
			return fmt.Errorf("%w (setting %s)", err, keyName(o.key)), false
		}
	}
	s.dirty = s.dirty || changed
	if s.stored { // only a commit to an existing entry can conflict and replay
		s.ops = append(s.ops, o)
	}
	return nil, false
}

// commitLocked writes what changed since the last commit and sets the
// cookie if it still can. Its error has not been reported yet.
func (s *session) commitLocked() error {
	if s.sessionData == nil || (s.state == notLoaded && len(s.deletes) == 0) {
		return nil
	}
	if s.seenDue && s.state == loaded && s.stored && !s.rewrite {
		s.noteSeen()
	}
	work := (s.state == loaded && (s.dirty || s.rewrite)) || len(s.deletes) > 0
	cookie := !s.headersSent.Load() && (s.stored && s.sendCookie || !s.stored && s.expireCookie)
	if !work && !cookie {
		return nil
	}
	// A cookie refreshed by a read expires as the store entry GETEX renewed
	// at load time does; a write renews both now.
	now := s.loadedAt
	if work {
		now = s.cfg.now()
	}
	var base context.Context // the observer's, if any
	var done func(CommitInfo)
	if work && s.cfg.observer != nil {
		s.stats = commitStats{}
		base, done = s.cfg.observer.StartCommit(context.WithoutCancel(s.c.Request.Context()))
	}
	var ctx context.Context
	var cancel context.CancelFunc = func() {}
	defer func() { cancel() }()
	storeCtx := func() context.Context {
		if ctx == nil {
			ctx = base
			if ctx == nil {
				ctx = context.WithoutCancel(s.c.Request.Context())
			}
			if s.cfg.storeTimeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, s.cfg.storeTimeout)
			}
		}
		return ctx
	}

	var err error
	if s.state == loaded && (s.dirty || s.rewrite) {
		err = s.saveLocked(storeCtx, now)
	}
	if err == nil {
		for _, id := range s.deletes {
			if derr := s.cfg.store.Delete(storeCtx(), s.key(id)); derr != nil {
				err = errors.Join(err, fmt.Errorf("%w: delete: %w", ErrUnavailable, derr))
			}
			s.stats.deleted = true
		}
		s.deletes = s.deletes[:0]
	}
	if done != nil {
		done(s.stats.info(s.cfg.idName(), err))
	}
	if err == nil && (s.seen != nil || s.unbind != nil) {
		s.updateUserIndex(storeCtx())
	}

	if !s.headersSent.Load() {
		switch {
		case s.stored && s.sendCookie:
			s.sendID(s.ttl(now), now)
			s.sendCookie = false
		case !s.stored && s.expireCookie:
			// Only on Destroy or when this request emptied the session:
			// expiring a merely stale cookie could race with, and erase,
			// the new cookie a concurrent login just sent.
			s.dropID(now)
			s.expireCookie = false
		}
	}
	return err
}

// saveLocked writes the session's data: a fresh entry for a new ID, a
// delete when the data became empty, or a compare-and-set that replays
// this request's changes when another request committed first.
func (s *session) saveLocked(storeCtx func() context.Context, now time.Time) error {
	defer func() { // whatever happens, these changes have been dealt with
		s.ops = s.ops[:0]
		s.dirty, s.rewrite = false, false
	}()
	s.decodeValues()
	if len(s.values) == 1 && s.hasCookieOptions() {
		s.keepExpirySuffix()
		clear(s.values) // cookie options alone are no session to keep
	}
	if len(s.values) == 0 {
		if s.stored {
			s.deletes = append(s.deletes, s.id)
			s.expireCookie = true
		}
		s.id, s.stored, s.version = "", false, 0
		return nil
	}
	ttl := s.ttl(now)
	if ttl <= 0 {
		return nil // the absolute timeout has passed: nothing to keep
	}
	if !s.stored {
		if s.headersSent.Load() {
			return fmt.Errorf("%w: %d changed keys not saved", ErrHeadersSent, len(s.values))
		}
		if s.id == "" {
			s.id = newID()
		}
		key := s.key(s.id)
		marks, mark := s.nextMarks(nil)
		payload := s.cfg.encodePayload(s.created, marks, s.values)
		s.stats.bytes = len(payload)
		version, err := s.cfg.store.Save(storeCtx(), key, payload, 0, ttl)
		if errors.Is(err, store.ErrConflict) {
			// Nobody else can know a fresh ID: the entry is this very
			// write, sent twice by a store client that retried it.
			s.stats.conflicts++
			version, err = s.ownWrite(storeCtx(), key, mark)
		}
		if err != nil {
			s.id = ""
			return fmt.Errorf("%w: save: %w", ErrUnavailable, err)
		}
		s.stored, s.version, s.sendCookie = true, version, true
		s.keepMarks(marks)
		s.stats.saved = true
		return nil
	}
	key := s.key(s.id)
	marks, mark := s.nextMarks(s.marks)
	for attempt := 1; ; attempt++ {
		payload := s.cfg.encodePayload(s.created, marks, s.values)
		s.stats.bytes = len(payload)
		version, err := s.cfg.store.Save(storeCtx(), key, payload, s.version, ttl)
		if err == nil {
			s.stats.saved = true
			s.version = version
			s.keepMarks(marks)
			s.sendCookie = s.sendCookie || s.cfg.persistent // the write renewed the entry
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("%w: save: %w", ErrUnavailable, err)
		}
		s.stats.conflicts++
		if attempt >= s.cfg.attempts {
			return fmt.Errorf("%w: gave up after %d attempts", ErrTooManyConflicts, attempt)
		}
		backoff(attempt)
		data, version, err := s.cfg.store.Load(storeCtx(), key, 0)
		if errors.Is(err, store.ErrNotFound) || err == nil && revoked(data, nil) {
			// Destroyed, regenerated, revoked or expired by another
			// request since this one loaded it: never bring it back.
			s.cfg.log.Info("ginsession: session ended by another request; this request's changes are dropped")
			s.stats.dropped = true
			s.id, s.stored, s.version, s.values = "", false, 0, nil
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: reload: %w", ErrUnavailable, err)
		}
		created, values, err := decodePayload(data)
		if err != nil {
			return err
		}
		stored := payloadMarks(data)
		s.created, s.values, s.version = created, values, version
		if hasMark(stored, mark) {
			// An earlier attempt of this commit was applied after all
			// (its store client timed out and sent it again): the data
			// already holds this request's changes.
			s.keepMarks(stored)
			s.sendCookie = s.sendCookie || s.cfg.persistent
			s.stats.saved = true
			return nil
		}
		marks, _ = s.nextMarksWith(stored, mark)
		before := payloadSize(s.values)
		for i := range s.ops {
			if _, err := s.apply(&s.ops[i]); err != nil {
				return err
			}
		}
		if err := s.checkSize(); err != nil && payloadSize(s.values) > before {
			return fmt.Errorf("%w, with the changes of another request", err)
		}
	}
}

// nextMarks returns the commit marks to write over an entry holding
// stored: its last marks and a fresh one, which it also returns.
func (s *session) nextMarks(stored []byte) (marks []byte, mark uint64) {
	mark = rand.Uint64()
	return s.nextMarksWith(stored, mark)
}

// nextMarksWith is nextMarks with a given mark.
func (s *session) nextMarksWith(stored []byte, mark uint64) ([]byte, uint64) {
	if len(stored) > (maxMarks-1)*markLen {
		stored = stored[len(stored)-(maxMarks-1)*markLen:]
	}
	b := s.markBuf[:0]
	b = append(b, stored...)
	b = binary.BigEndian.AppendUint64(b, mark)
	return b, mark
}

// keepMarks records the marks now stored, for the request's next commit.
func (s *session) keepMarks(marks []byte) {
	s.marks = append(s.storedMarks[:0], marks...)
}

// ownWrite loads key after a Save that reported a conflict and returns the
// entry's version if it holds mark, the mark of the write that conflicted:
// the write was applied after all. Otherwise it returns the error to
// report.
func (s *session) ownWrite(ctx context.Context, key string, mark uint64) (uint64, error) {
	data, version, err := s.cfg.store.Load(ctx, key, 0)
	if err != nil {
		return 0, fmt.Errorf("reload after a conflict: %w", err)
	}
	if !hasMark(payloadMarks(data), mark) {
		return 0, store.ErrConflict
	}
	return version, nil
}

// checkSize returns an error wrapping ErrTooLarge if the session's values
// would encode to more than MaxSize bytes.
func (s *session) checkSize() error {
	if n := payloadSize(s.values); n > s.cfg.maxSize {
		return fmt.Errorf("%w: %d bytes encoded, MaxSize is %d", ErrTooLarge, n, s.cfg.maxSize)
	}
	return nil
}

// keyName names key in an error message.
func keyName(key string) string {
	if key == flashKey {
		return "flash messages"
	}
	return strconv.Quote(key)
}

// backoff waits a little, more after each lost race, with jitter so that
// racing requests spread out.
func backoff(attempt int) {
	limit := time.Duration(min(attempt, 20)) * 250 * time.Microsecond
	time.Sleep(rand.N(limit) + 50*time.Microsecond)
}

// setCookie puts our Set-Cookie line in the response, replacing the one
// set earlier in this request, if any.
func (s *session) setCookie(line string) {
	h := s.w.ResponseWriter.Header()
	lines := h["Set-Cookie"]
	if s.cookieIdx >= 0 && s.cookieIdx < len(lines) {
		lines[s.cookieIdx] = line
		return
	}
	s.cookieIdx = len(lines)
	if len(lines) == 0 {
		s.cookieLine[0] = line
		h["Set-Cookie"] = s.cookieLine[:1:1] // a later append copies it
		return
	}
	h["Set-Cookie"] = append(lines, line)
}

// beforeHeaders commits ahead of the response. sending says whether the
// headers go out now (gin's WriteHeader only records the status).
func (s *session) beforeHeaders(sending bool) {
	if !s.active.Load() { // nothing to commit
		if sending {
			s.headersSent.Store(true)
		}
		if !s.active.Load() {
			return
		}
		// Touched meanwhile, from a goroutine with a c.Copy(): its
		// change is committed by finish, or reported if it needs a cookie.
	}
	s.mu.Lock()
	if s.headersSent.Load() || s.done.Load() {
		s.mu.Unlock()
		return
	}
	err := func() error {
		defer s.mu.Unlock() // an Update replayed on conflict may panic
		err := s.commitLocked()
		s.cacheHeaders(s.w.ResponseWriter.Header())
		if sending {
			s.headersSent.Store(true)
		}
		return err
	}()
	if err != nil {
		s.report(err)
	}
}

// finish commits what is left once the handlers have returned: changes
// made after the response started are saved when the session already has
// a cookie, and reported when they would need one.
func (s *session) finish() {
	if !s.active.Load() {
		if s.cfg.idleFinish != nil {
			s.cfg.idleFinish()
		}
		s.done.Store(true)
		if !s.active.Load() {
			return // a later touch sees done
		}
		// Touched meanwhile, maybe before done was set: commit it.
	}
	err := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		err := s.commitLocked()
		if !s.headersSent.Load() {
			s.cacheHeaders(s.w.ResponseWriter.Header())
		}
		s.done.Store(true)
		return err
	}()
	if err != nil {
		s.report(err)
	}
}

// report hands a store or commit failure to the application: once to the
// ErrorHandler, every time to c.Errors.
func (s *session) report(err error) {
	s.c.Error(err) // recorded for the application's error middleware
	s.mu.Lock()
	first := !s.reported
	s.reported = true
	s.mu.Unlock()
	if first {
		started := s.w.ResponseWriter.Written()
		s.cfg.errorHandler(s.c, err)
		if !started && s.w.ResponseWriter.Written() {
			// The ErrorHandler answered: what the handler writes from
			// now on, believing it succeeded, must not follow it.
			s.replaced.Store(true)
		}
	}
}

// failLoad reports a load failure through the ErrorHandler unless the
// handler asked for the error itself.
func (s *session) failLoad(err error, handlerTakesIt bool) error {
	if handlerTakesIt {
		s.mu.Lock()
		s.reported = true
		s.mu.Unlock()
		return err
	}
	s.report(err)
	return err
}

// hookWriter is the gin.ResponseWriter the handlers see: it commits the
// session before the headers leave.
type hookWriter struct {
	gin.ResponseWriter
	s *session
}

// After a failed load or commit whose ErrorHandler wrote a response, the
// handler's own writes are discarded: the client gets the ErrorHandler's
// response and nothing else, never a 503 with the handler's success body.

// WriteHeader records the status, committing first so that a later
// change is still possible until the headers are actually sent.
func (w *hookWriter) WriteHeader(code int) {
	w.s.beforeHeaders(false)
	if w.s.replaced.Load() {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// WriteHeaderNow commits the session, then sends the headers.
func (w *hookWriter) WriteHeaderNow() {
	w.s.beforeHeaders(true)
	if w.s.replaced.Load() {
		return
	}
	w.ResponseWriter.WriteHeaderNow()
}

// Write commits the session before the first byte. After the ErrorHandler
// answered, it discards b and returns ErrResponseReplaced.
func (w *hookWriter) Write(b []byte) (int, error) {
	w.s.beforeHeaders(true)
	if w.s.replaced.Load() {
		return 0, ErrResponseReplaced
	}
	return w.ResponseWriter.Write(b)
}

// WriteString commits the session before the first byte. After the
// ErrorHandler answered, it discards str and returns ErrResponseReplaced.
func (w *hookWriter) WriteString(str string) (int, error) {
	w.s.beforeHeaders(true)
	if w.s.replaced.Load() {
		return 0, ErrResponseReplaced
	}
	return w.ResponseWriter.WriteString(str)
}

// Flush commits the session, then flushes.
func (w *hookWriter) Flush() {
	w.s.beforeHeaders(true)
	w.ResponseWriter.Flush()
}

// Hijack commits the session before handing over the connection.
func (w *hookWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.s.beforeHeaders(true)
	return w.ResponseWriter.Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *hookWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
