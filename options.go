package ginsession

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// Defaults used for the zero values of [Options] fields.
const (
	DefaultCookieName      = "session"
	DefaultKeyPrefix       = "session:"
	DefaultLifetime        = 14 * 24 * time.Hour
	DefaultAbsoluteTimeout = 30 * 24 * time.Hour
	DefaultCommitAttempts  = 50
	DefaultMaxSize         = 64 << 10
)

// NoAbsoluteTimeout, as Options.AbsoluteTimeout, lets a session that keeps
// being used live for ever.
const NoAbsoluteTimeout time.Duration = -1

// Options configures the middleware returned by [New]. The zero value is
// usable: it keeps sessions in process memory, in a cookie named "session";
// a session ends 14 days after the last request that used it, and 30 days
// after it began however much it is used.
type Options struct {
	// Store keeps the sessions. Nil means an in-process memstore, which
	// loses sessions on restart and is not shared between instances; New
	// logs a line saying so. Flask-Session: SESSION_TYPE.
	Store store.Store

	// Codec encodes session values. Nil means Msgpack.
	// Flask-Session: SESSION_SERIALIZATION_FORMAT.
	Codec Codec

	// KeyPrefix is put in front of every session ID to form the store key.
	// Give each application sharing a store its own prefix.
	// Empty means "session:". Flask-Session: SESSION_KEY_PREFIX.
	KeyPrefix string

	// Lifetime is how long a session lives after the last request that
	// used it: every request that reads or writes the session renews it
	// (in the store and in the browser), or only those that change it with
	// RenewOnWriteOnly. Zero means 14 days.
	// Flask: PERMANENT_SESSION_LIFETIME (31 days there).
	Lifetime time.Duration

	// AbsoluteTimeout ends a session this long after it was created (or
	// last regenerated, as Regenerate does at login), however often it is
	// used, so that even an active user signs in again now and then (OWASP
	// ASVS asks for at least every 30 days). Zero means 30 days;
	// NoAbsoluteTimeout (any negative value) means no limit, as in Flask,
	// which has none.
	AbsoluteTimeout time.Duration

	// RenewOnWriteOnly turns rolling expiry off for requests that only read
	// the session: they neither renew its lifetime in the store nor send a
	// Set-Cookie, and the session is renewed only by a request that changes
	// it. Off by default: every request that uses the session renews it.
	// Flask: SESSION_REFRESH_EACH_REQUEST = False.
	RenewOnWriteOnly bool

	// MaxSize bounds the encoded size of a session, its keys and values
	// together, in bytes. A Set, Update or AddFlash that would make the
	// session larger than that returns an error wrapping ErrTooLarge and
	// changes nothing (a change that shrinks a session already past it,
	// written before MaxSize was lowered, goes through). Zero means 64 KiB, which every bundled store accepts
	// (memcached's items are 1 MiB at most by default); a negative value
	// panics.
	MaxSize int

	// Cookie sets the session cookie's name and attributes.
	Cookie CookieOptions

	// Header, if set, carries the session ID in this request header
	// instead of a cookie, for API clients that keep no cookies; Cookie is
	// then unused. A response carries the header when the ID is new or
	// changed (a first write, Regenerate), and carries it empty when the
	// session ended (Destroy): the client then drops its token.
	// "Authorization" means "Authorization: Bearer <token>" both ways.
	// SigningKeys apply as for cookies; the ID is never read from the
	// query string. Responses that use the session get Vary on the
	// header. Two middlewares, one with a cookie and one with a header,
	// may share one store.
	Header string

	// SigningKeys, if set, make the cookie carry an HMAC-SHA256 signature
	// of the session ID. The first key signs; every key verifies, so a
	// key can be rotated by putting the new one first. Each key must be at
	// least 32 bytes. Flask-Session: SESSION_USE_SIGNER with SECRET_KEY.
	SigningKeys [][]byte

	// ErrorHandler is called when the session cannot be loaded or saved
	// because the store failed. Nil means: log the error and, if the
	// response has not been started, abort with 503 Service Unavailable.
	// It is called at most once per request.
	ErrorHandler func(c *gin.Context, err error)

	// Logger receives the middleware's log lines. Nil means slog.Default().
	Logger *slog.Logger

	// MaxUserSessions bounds how many sessions one user may have through
	// Login: past it, a Login ends the user's least recently seen
	// sessions, so that the user's index stays small and "log out
	// everywhere" reaches every session. Zero means 50.
	MaxUserSessions int

	// Observer, if set, is told about every load and commit that reaches
	// the store, for metrics and tracing (module
	// github.com/ginsession/ginsession/otel provides one for
	// OpenTelemetry). Nil costs nothing.
	Observer Observer

	// CommitAttempts bounds how many times a commit that loses a race with
	// a concurrent request is re-applied before it fails with
	// ErrTooManyConflicts. Zero means 50.
	CommitAttempts int

	// StoreTimeout, if positive, bounds how long a request waits for the
	// store: the load, and the calls of each commit together. Commits are
	// never cancelled when the client goes away, so a change the handler
	// made is saved even if the client disconnects. Zero means no bound
	// beyond the store client's own timeouts. go-redis v9.22's defaults are
	// 5 s to dial, read or write and 3 retries: a Redis that is down fails
	// a command in about 1.7 s, but one that stops answering without
	// closing its connections (frozen, or a network partition) can hold a
	// request for about 20 s per command. go-redis honours a context's
	// deadline during a read only with ContextTimeoutEnabled set on the
	// client: set it with StoreTimeout, or bound the client's ReadTimeout
	// and MaxRetries instead. Setting it costs a context and a timer per
	// load and commit.
	StoreTimeout time.Duration
}

// CookieOptions sets the session cookie's name and attributes.
type CookieOptions struct {
	// Name of the cookie. Empty means "session".
	// Flask: SESSION_COOKIE_NAME.
	Name string
	// Path attribute. Empty means "/". Flask: SESSION_COOKIE_PATH.
	Path string
	// Domain attribute. Empty means host-only. Flask: SESSION_COOKIE_DOMAIN.
	Domain string
	// Secure restricts the cookie to HTTPS. Set it in production.
	// Flask: SESSION_COOKIE_SECURE.
	Secure bool
	// ScriptReadable drops the HttpOnly attribute, which is set by default
	// so that page scripts cannot read the session ID.
	// Flask: SESSION_COOKIE_HTTPONLY=False.
	ScriptReadable bool
	// SameSite attribute. Zero means http.SameSiteLaxMode;
	// http.SameSiteDefaultMode leaves the attribute out.
	// Flask: SESSION_COOKIE_SAMESITE.
	SameSite http.SameSite
	// Partitioned sets the Partitioned attribute (CHIPS). It needs Secure.
	// Flask: SESSION_COOKIE_PARTITIONED.
	Partitioned bool
	// BrowserSession makes the cookie last until the browser closes (no
	// Max-Age or Expires). The session still ends after Lifetime in the
	// store. Flask: SESSION_PERMANENT=False.
	BrowserSession bool
}

// config is Options with every default filled in and every value checked.
type config struct {
	store           store.Store
	codec           Codec
	prefix          string
	lifetime        time.Duration
	absolute        time.Duration
	renewOnRead     bool // rolling expiry on reads; see Options.RenewOnWriteOnly
	disabled        bool // the store keeps nothing: store.KeepsNothing
	observer        Observer
	maxUserSessions int
	jsonDocs        bool   // store JSON documents: the codec is JSON
	header          string // Options.Header, canonical; "" for a cookie
	bearer          bool   // header is Authorization: "Bearer <token>"
	maxSize         int
	cookieName      string
	cookieSuffix    string // "; Path=/; HttpOnly; SameSite=Lax", fixed at New
	persistent      bool
	keys            [][]byte
	errorHandler    func(*gin.Context, error)
	log             *slog.Logger
	attempts        int
	storeTimeout    time.Duration
	now             func() time.Time // time.Now; tests replace it
	idleFinish      func()           // nil; tests widen a race window with it

	expiry atomic.Pointer[expiryAttrs] // the last cookie expiry built; see expiryAttrs
}

// newConfig validates o and fills in its defaults. It panics on a
// configuration a program cannot run with, as gin's constructors do.
func newConfig(o Options) *config {
	cfg := &config{
		store:           o.Store,
		codec:           o.Codec,
		prefix:          o.KeyPrefix,
		lifetime:        o.Lifetime,
		absolute:        o.AbsoluteTimeout,
		renewOnRead:     !o.RenewOnWriteOnly,
		maxSize:         o.MaxSize,
		observer:        o.Observer,
		maxUserSessions: o.MaxUserSessions,
		cookieName:      o.Cookie.Name,
		persistent:      !o.Cookie.BrowserSession,
		errorHandler:    o.ErrorHandler,
		log:             o.Logger,
		attempts:        o.CommitAttempts,
		storeTimeout:    o.StoreTimeout,
		now:             time.Now,
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	if cfg.store == nil {
		cfg.store = memstore.New()
		cfg.log.Info("ginsession: no Options.Store given; using the in-process memstore, " +
			"which loses sessions on restart and is not shared between instances")
	}
	_, cfg.disabled = cfg.store.(store.KeepsNothing)
	if cfg.codec == nil {
		cfg.codec = Msgpack
	}
	_, cfg.jsonDocs = cfg.codec.(jsonCodec)
	if cfg.prefix == "" {
		cfg.prefix = DefaultKeyPrefix
	}
	switch {
	case cfg.lifetime == 0:
		cfg.lifetime = DefaultLifetime
	case cfg.lifetime < time.Second:
		panic(fmt.Sprintf("ginsession: Options.Lifetime %v is below one second", cfg.lifetime))
	}
	switch {
	case cfg.absolute == 0:
		cfg.absolute = DefaultAbsoluteTimeout
	case cfg.absolute < 0:
		cfg.absolute = 0 // none
	case cfg.absolute < time.Second:
		panic(fmt.Sprintf("ginsession: Options.AbsoluteTimeout %v is below one second", cfg.absolute))
	}
	switch {
	case cfg.maxUserSessions == 0:
		cfg.maxUserSessions = DefaultMaxUserSessions
	case cfg.maxUserSessions < 0:
		panic("ginsession: Options.MaxUserSessions is negative")
	}
	switch {
	case cfg.maxSize == 0:
		cfg.maxSize = DefaultMaxSize
	case cfg.maxSize < 0:
		panic("ginsession: Options.MaxSize is negative")
	}
	if o.Header != "" {
		if !isToken(o.Header) {
			panic(fmt.Sprintf("ginsession: Options.Header %q is not a valid header name", o.Header))
		}
		cfg.header = textproto.CanonicalMIMEHeaderKey(o.Header)
		cfg.bearer = cfg.header == "Authorization"
		cfg.persistent = false // a header has no expiry to renew
	}
	if cfg.cookieName == "" {
		cfg.cookieName = DefaultCookieName
	}
	if !isToken(cfg.cookieName) {
		panic(fmt.Sprintf("ginsession: Options.Cookie.Name %q is not a valid cookie name", cfg.cookieName))
	}
	switch {
	case cfg.attempts == 0:
		cfg.attempts = DefaultCommitAttempts
	case cfg.attempts < 0:
		panic("ginsession: Options.CommitAttempts is negative")
	}
	if cfg.storeTimeout < 0 {
		panic("ginsession: Options.StoreTimeout is negative")
	}
	for i, k := range o.SigningKeys {
		if len(k) < 32 {
			panic(fmt.Sprintf("ginsession: Options.SigningKeys[%d] is %d bytes; signing keys need at least 32", i, len(k)))
		}
		cfg.keys = append(cfg.keys, append([]byte(nil), k...))
	}
	if cfg.errorHandler == nil {
		log := cfg.log
		cfg.errorHandler = func(c *gin.Context, err error) {
			log.ErrorContext(c.Request.Context(), "ginsession: session store failed",
				"err", err, "method", c.Request.Method, "path", c.Request.URL.Path)
			if !c.Writer.Written() {
				c.AbortWithStatus(http.StatusServiceUnavailable)
			}
		}
	}
	suffix, err := cookieSuffix(cfg.cookieName, o.Cookie)
	if err != nil {
		panic(err.Error())
	}
	cfg.cookieSuffix = suffix
	return cfg
}

// cookieSuffix builds the attributes that are the same on every cookie the
// middleware sends, checking each one. Its error names the field at fault.
func cookieSuffix(name string, o CookieOptions) (string, error) {
	var b strings.Builder
	path := o.Path
	if path == "" {
		path = "/"
	}
	// Browsers drop a cookie whose name prefix its attributes contradict
	// (RFC 6265bis §4.1.3), and every login would then fail silently.
	switch lower := strings.ToLower(name); {
	case strings.HasPrefix(lower, "__host-"):
		if !o.Secure || o.Domain != "" || path != "/" {
			return "", fmt.Errorf("ginsession: Options.Cookie.Name %q needs Secure, no Domain and Path \"/\": browsers reject the cookie otherwise", name)
		}
	case strings.HasPrefix(lower, "__secure-"):
		if !o.Secure {
			return "", fmt.Errorf("ginsession: Options.Cookie.Name %q needs Secure: browsers reject the cookie otherwise", name)
		}
	}
	if !isAttrValue(path) {
		return "", fmt.Errorf("ginsession: Options.Cookie.Path %q has characters a cookie cannot carry", path)
	}
	b.WriteString("; Path=")
	b.WriteString(path)
	if o.Domain != "" {
		if !isAttrValue(o.Domain) || strings.ContainsAny(o.Domain, " /:") {
			return "", fmt.Errorf("ginsession: Options.Cookie.Domain %q is not a valid domain", o.Domain)
		}
		b.WriteString("; Domain=")
		b.WriteString(o.Domain)
	}
	if !o.ScriptReadable {
		b.WriteString("; HttpOnly")
	}
	if o.Secure {
		b.WriteString("; Secure")
	}
	switch o.SameSite {
	case 0, http.SameSiteLaxMode:
		b.WriteString("; SameSite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		if !o.Secure {
			return "", errors.New("ginsession: Options.Cookie.SameSite None needs Secure: browsers reject the cookie otherwise")
		}
		b.WriteString("; SameSite=None")
	case http.SameSiteDefaultMode:
	default:
		return "", fmt.Errorf("ginsession: Options.Cookie.SameSite %d is not a known mode", o.SameSite)
	}
	if o.Partitioned {
		if !o.Secure {
			return "", errors.New("ginsession: Options.Cookie.Partitioned needs Secure: browsers reject the cookie otherwise")
		}
		b.WriteString("; Partitioned")
	}
	return b.String(), nil
}

// isToken reports whether s is a non-empty RFC 7230 token, as a cookie name
// must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isAttrValue reports whether s can stand as a cookie attribute value.
func isAttrValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}
