// Package sessions gives ginsession the API of github.com/gin-contrib/sessions,
// so that a program written for gin-contrib/sessions moves to ginsession by
// changing its imports and the line that builds the store:
//
//	// before: gin-contrib/sessions
//	store, _ := redis.NewStore(10, "tcp", "localhost:6379", "", []byte("secret"))
//	r.Use(sessions.Sessions("mysession", store))
//
//	// after: this package
//	rdb := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	r.Use(sessions.Sessions("mysession", ginsession.Options{Store: redisstore.New(rdb)}))
//
// Handlers keep calling Default(c).Get, Set, Save and the rest. They gain
// what ginsession does: changes are committed automatically just before the
// response headers are sent, so a forgotten Save loses nothing; commits are
// compare-and-set, so two concurrent requests of one session each keep
// their change instead of the later one overwriting the earlier; a request
// that does not touch the session costs no store round trip.
//
// # Values
//
// Get returns a value of the type that was Set, in the same request and in
// later ones, so that code written as session.Get("count").(int) keeps
// working. Each value is stored with the name of its type:
//
//   - bool, string, every int, uint and float type, time.Time and
//     time.Duration come back as themselves ([]byte too: it is []uint8);
//   - pointers, slices, arrays and maps built from those and from
//     registered types ([]string, map[string]int, *User, []User) come back
//     as themselves;
//   - []any, map[string]any and gin.H come back as themselves, and each
//     element by these same rules;
//   - a named type, a struct above all, comes back as itself once the
//     program has called Register with a value of it, at start-up, as it
//     called gob.Register for gin-contrib/sessions;
//   - any other value comes back in its generic form, as msgpack decodes it
//     into an any: an unregistered struct as map[string]any, a named string
//     as string, a named integer as int64, a slice of such as []any;
//   - nil comes back as nil, which is also what Get returns for an absent
//     key.
//
// A value stored by a program that registered a type this one did not also
// comes back in its generic form. Values that msgpack cannot encode
// (functions, channels, complex numbers) make Set fail: Save returns the
// error.
//
// # Keys
//
// gin-contrib/sessions accepts any comparable key; ginsession's keys are
// strings. A string key is used as it is, unless it starts with the byte
// 0x00 or 0x01: it then gets a 0x01 in front. Any other key k becomes 0x01,
// then fmt's %T of k, then ':', then fmt's %#v of k. So the keys 1 and "1"
// differ, and so do a named string type's key("a") and "a", as they do in
// gin-contrib/sessions. Keys set through this package are stored with
// their values wrapped with their type names: read them through this
// package, not with ginsession.Get.
//
// # Errors and Save
//
// Set, Delete, Clear, AddFlash and Options cannot return an error in this
// API. The first error one of them meets (the store could not be read, the
// session would pass Options.MaxSize, a value cannot be encoded, cookie
// options a browser would reject) is kept and returned by the next Save,
// and also added to c.Errors unless ginsession reported it already (a store
// failure goes to the ErrorHandler). Save commits the session's changes at
// once, with ginsession.Commit, and returns that error or the store's; it is
// optional, since whatever changed is committed before the response anyway,
// together with changes made after Save.
//
// # Options
//
// Options gives this session's cookie its own attributes, kept in the
// session so that later responses send the same ones
// (ginsession.SetCookieOptions). A negative MaxAge ends the session, as
// ginsession.Destroy does: its entry is deleted and its cookie expired.
// MaxAge 0 makes a browser-session cookie, without Max-Age. A positive
// MaxAge makes a persistent cookie whose lifetime is ginsession's
// Options.Lifetime (14 days by default, renewed by every request that uses
// the session), not MaxAge: set Lifetime in the Options given to Sessions
// instead. An empty Path means "/", SameSite 0 means Lax, and HttpOnly
// false makes the cookie readable by scripts, as it does in
// gin-contrib/sessions, whose Options replace every attribute: set
// HttpOnly.
//
// # Several sessions
//
// SessionsMany and SessionsManyStores return one middleware for a session
// per name: install it with r.Use(sessions.SessionsMany(names, opts)).
// Each name is the name of its session's cookie, and its sessions are kept
// under a KeyPrefix of their own, Options.KeyPrefix followed by the name and
// a colon, so that the sessions of different names never meet in the store.
// DefaultMany(c, name) returns the session of the name; Default(c) returns
// the one installed last.
package sessions

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

// flashKey is the flash key of AddFlash and Flashes called without one.
const flashKey = "_flash"

// Session is a request's view of one session, as in gin-contrib/sessions.
type Session interface {
	// ID returns the session's ID, or "" while nothing is stored. Never
	// log it: it is the user's key.
	ID() string
	// Get returns the value stored under key, as the type it was stored
	// as (see the package documentation), or nil.
	Get(key any) any
	// Set stores val under key.
	Set(key, val any)
	// Delete removes key.
	Delete(key any)
	// Clear removes every key and flash message.
	Clear()
	// AddFlash queues a flash message under the flash key vars[0], or
	// "_flash" if vars is empty.
	AddFlash(value any, vars ...string)
	// Flashes returns the messages queued under the flash key vars[0], or
	// "_flash", oldest first, and removes them.
	Flashes(vars ...string) []any
	// Options sets the attributes of this session's cookie.
	Options(Options)
	// Save commits the session's changes now and returns the first error
	// met since the last Save, if any. It is optional: changes are
	// committed before the response in any case.
	Save() error
}

// Options are the attributes of a session's cookie, as in
// gin-contrib/sessions; see the package documentation for how each maps
// onto ginsession's.
type Options struct {
	Path   string
	Domain string
	// MaxAge < 0 ends the session; 0 makes a cookie that lasts until the
	// browser closes; > 0 makes a persistent cookie, whose lifetime is
	// ginsession's Options.Lifetime.
	MaxAge   int
	Secure   bool
	HttpOnly bool // named as in gin-contrib/sessions
	SameSite http.SameSite
	// Partitioned sets the Partitioned attribute (CHIPS); it needs Secure.
	Partitioned bool
}

// SessionStore names one session for SessionsManyStores: the name of its
// cookie, and the options of its middleware.
type SessionStore struct {
	Name    string
	Options ginsession.Options
}

// Sessions returns ginsession's middleware for one session whose cookie is
// called name: opts as given to ginsession.New, with name in place of
// opts.Cookie.Name. Like ginsession.New, it panics on options that cannot
// work.
func Sessions(name string, opts ginsession.Options) gin.HandlerFunc {
	opts.Cookie.Name = name
	return ginsession.New(opts)
}

// SessionsMany returns the middleware for one session per name, all with
// opts: r.Use(sessions.SessionsMany(names, opts)). The
// session of each name has its own cookie, named name, and is stored under
// opts.KeyPrefix (ginsession's default if empty) followed by name and a
// colon. It panics if a name repeats.
func SessionsMany(names []string, opts ginsession.Options) gin.HandlerFunc {
	list := make([]SessionStore, len(names))
	for i, name := range names {
		list[i] = SessionStore{Name: name, Options: opts}
	}
	return SessionsManyStores(list)
}

// SessionsManyStores is SessionsMany with options, and so a store, of
// each session's own. Each session is stored under its Options.KeyPrefix
// followed by its name and a colon.
func SessionsManyStores(sessionStores []SessionStore) gin.HandlerFunc {
	all := make([]ginsession.Options, 0, len(sessionStores))
	seen := make(map[string]bool, len(sessionStores))
	for _, ss := range sessionStores {
		if seen[ss.Name] {
			panic(fmt.Sprintf("sessions: the session name %q is given twice", ss.Name))
		}
		seen[ss.Name] = true
		opts := ss.Options
		prefix := opts.KeyPrefix
		if prefix == "" {
			prefix = ginsession.DefaultKeyPrefix
		}
		opts.KeyPrefix = prefix + ss.Name + ":"
		opts.Cookie.Name = ss.Name
		all = append(all, opts)
	}
	return ginsession.NewMany(all...)
}

// Default returns the session of the request: that of the session
// middleware installed last. Its methods panic if there is none.
func Default(c *gin.Context) Session {
	return cached(c, defaultKey{}, func() *gin.Context { return c })
}

// DefaultMany returns the session whose cookie is called name, installed
// with SessionsMany, SessionsManyStores or Sessions. It panics if the
// request has no session of that name.
func DefaultMany(c *gin.Context, name string) Session {
	return cached(c, namedKey{name}, func() *gin.Context { return ginsession.Named(c, name) })
}

// The keys under which a request's Session values are kept in c.Keys, so
// that every Default(c) of a request returns the same one, and the error
// it kept reaches Save.
type (
	defaultKey struct{}
	namedKey   struct{ name string }
)

// cached returns the session kept under key in c, or makes it, reaching
// its ginsession session through the context sc returns. A session made
// for another context (c.Copy() copies c.Keys) is not reused.
func cached(c *gin.Context, key any, sc func() *gin.Context) *session {
	if v, ok := c.Get(key); ok {
		if s, ok := v.(*session); ok && s.c == c {
			return s
		}
	}
	s := &session{c: c, sc: sc()}
	c.Set(key, s)
	return s
}

// session implements Session over ginsession's accessors.
type session struct {
	c   *gin.Context // the request's context, for c.Error
	sc  *gin.Context // the context through which the accessors reach this session
	err error        // the first error met since the last Save
}

// keep records err for Save. An error ginsession has reported already
// (the store failed: the ErrorHandler ran) is not added to c.Errors again.
func (s *session) keep(err error) {
	if err == nil {
		return
	}
	if s.err == nil {
		s.err = err
	}
	if !errors.Is(err, ginsession.ErrUnavailable) {
		s.c.Error(err) // recorded for the application's error middleware
	}
}

func (s *session) ID() string { return ginsession.ID(s.sc) }

func (s *session) Get(key any) any {
	k := keyString(key)
	if v, ok := ginsession.Get[value](s.sc, k); ok {
		return v.decode()
	}
	// Stored by ginsession's own accessors, without a type name.
	v, _ := ginsession.Get[any](s.sc, k)
	return v
}

func (s *session) Set(key, val any) {
	v, err := encode(val)
	if err != nil {
		s.keep(fmt.Errorf("sessions: encoding the value of %v: %w", key, err))
		return
	}
	s.keep(ginsession.Set(s.sc, keyString(key), v))
}

func (s *session) Delete(key any) {
	s.keep(ginsession.Delete(s.sc, keyString(key)))
}

func (s *session) Clear() {
	s.keep(ginsession.Clear(s.sc))
}

func (s *session) AddFlash(msg any, vars ...string) {
	v, err := encode(msg)
	if err != nil {
		s.keep(fmt.Errorf("sessions: encoding a flash message: %w", err))
		return
	}
	s.keep(ginsession.AddFlash(s.sc, flashItem{K: flashName(vars), T: v.T, V: v.V}))
}

func (s *session) Flashes(vars ...string) []any {
	name := flashName(vars)
	var out []any
	for _, item := range ginsession.Flashes[flashItem](s.sc) {
		if item.K == name {
			out = append(out, value{T: item.T, V: item.V}.decode())
			continue
		}
		// Queued under another flash key: back in the queue, for the
		// Flashes call with that key.
		s.keep(ginsession.AddFlash(s.sc, item))
	}
	return out
}

func (s *session) Options(o Options) {
	if o.MaxAge < 0 {
		s.keep(ginsession.Destroy(s.sc))
		return
	}
	s.keep(ginsession.SetCookieOptions(s.sc, ginsession.CookieOptions{
		Path:           o.Path,
		Domain:         o.Domain,
		Secure:         o.Secure,
		ScriptReadable: !o.HttpOnly,
		SameSite:       o.SameSite,
		Partitioned:    o.Partitioned,
		BrowserSession: o.MaxAge == 0,
	}))
}

func (s *session) Save() error {
	err := s.err
	s.err = nil
	if cerr := ginsession.Commit(s.sc); err == nil {
		err = cerr
	}
	return err
}

func flashName(vars []string) string {
	if len(vars) > 0 {
		return vars[0]
	}
	return flashKey
}

// keyString maps a gin-contrib/sessions key onto a ginsession key; see
// "Keys" in the package documentation.
func keyString(key any) string {
	if k, ok := key.(string); ok {
		if k != "" && (k[0] == 0 || k[0] == 1) {
			return "\x01" + k
		}
		return k
	}
	var b strings.Builder
	b.WriteByte(1)
	fmt.Fprintf(&b, "%T:%#v", key, key)
	return b.String()
}
