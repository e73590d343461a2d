// Package memcachedstore keeps sessions in memcached (1.6.10 or later),
// through its meta protocol, with a small client of its own that uses the
// standard library only.
//
// Each session is one item: the key the store is given, which ginsession
// forms as its KeyPrefix ("session:") followed by the session ID, with
// WithPrefix's prefix, if any, in front. Its value is the payload as it
// is, and its version is memcached's CAS unique. Every operation is one
// command, so one round trip:
//
//	Load, ttl > 0      mg key v c T<exptime>    value, CAS, new expiry
//	Load, ttl <= 0     mg key v c
//	Save, version 0    ms key len c ME T<exptime>   add: only if absent
//	Save, version v    ms key len c C<v> T<exptime> only if the CAS is v
//	Delete             md key
//
// memcached draws CAS values from one counter per server, so a Save
// returns a version that no item of that server has had before, a touch
// leaves it alone, and a writer holding a version from before a Delete or
// an expiry gets store.ErrConflict.
//
// A key memcached takes as it is (1 to 250 printable ASCII bytes, no
// space) is sent unchanged. Any other key is sent as the byte 0xff
// followed by its SHA-256, base64-encoded with the b flag, so that no key
// is refused and no two keys share an item.
//
// memcached counts expiry in whole seconds on a clock that ticks once a
// second, and reads an expiry over 30 days as a Unix time. The store asks
// for ttl rounded up plus one second, so an entry lives at least ttl and
// less than ttl + 2s; beyond 30 days it sends now + ttl as a Unix time,
// capped at 2038-01-19, the last one memcached accepts.
//
// # Several servers
//
// NewServers spreads keys over several servers by rendezvous hashing:
// each key lives on exactly one of them, chosen from the key and the
// servers' addresses alone, so adding or removing a server moves only
// that server's share of the keys. Each server has its own connection
// pool. A server that is down or hangs fails the operations on its own
// keys, which the other servers never take over: a session that moved to
// another server while its own was unreachable would come back stale
// when it returned. Operations on the other servers' keys go on as
// before.
package memcachedstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ginsession/ginsession/store"
)

// Defaults of the options.
const (
	// DefaultMaxConns is how many connections a Store opens at most.
	DefaultMaxConns = 16
	// DefaultTimeout bounds each dial and each round trip whose context
	// has no earlier deadline.
	DefaultTimeout = 3 * time.Second
	// DefaultMaxItemSize is memcached's default item size limit (its -I
	// option): 1 MiB.
	DefaultMaxItemSize = 1 << 20
)

// itemOverhead is what an item takes besides its key and value, rounded
// up: memcached 1.6 needs about 60 bytes.
const itemOverhead = 64

var (
	// ErrTooLarge is wrapped by the error Save returns when the payload
	// does not fit in a memcached item. Save checks the size against
	// WithMaxItemSize before it sends anything: memcached itself, when it
	// refuses an item as too large, also deletes the item stored under
	// that key.
	ErrTooLarge = errors.New("memcachedstore: session too large for a memcached item")

	// ErrCASDisabled is wrapped by the error Load and Save return when the
	// server reports CAS 0 for an item, as memcached does when it runs
	// with -C. The store needs CAS values as versions.
	ErrCASDisabled = errors.New("memcachedstore: the server does not keep CAS values (is it running with -C?)")

	// ErrCorrupt is wrapped by the error Load returns when the item under
	// the key is larger than WithMaxItemSize: another program wrote it, or
	// the server's -I is larger than the Store was told. It wraps
	// store.ErrCorrupt, so ginsession starts a fresh session and leaves the
	// item alone.
	ErrCorrupt = store.NewCorruptError("memcachedstore: corrupt entry")

	// ErrProtocol is wrapped by the errors that a reply the store cannot
	// understand causes. The connection is closed.
	ErrProtocol = errors.New("memcachedstore: protocol error")

	// ErrClosed is wrapped by the errors of operations on a closed Store.
	ErrClosed = errors.New("memcachedstore: store closed")
)

// A DialFunc opens a connection to addr. net.Dialer's DialContext is one;
// network is always "tcp".
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Store is a store.Store backed by one memcached server, or by several
// that share the keys. It is safe for concurrent use. Close it when done.
//
// Its errors never contain keys: a key holds a session ID, which must not
// end up in logs.
type Store struct {
	servers     []*server
	prefix      string
	maxItemSize int
}

var _ store.Store = (*Store)(nil)

// An Option configures a Store.
type Option func(*config)

type config struct {
	prefix      string
	maxConns    int
	timeout     time.Duration
	maxItemSize int
	dial        DialFunc
}

// WithPrefix puts prefix in front of every key the Store is given. There
// is none by default: ginsession already prefixes its keys
// (Options.KeyPrefix).
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithMaxConns sets how many connections the Store opens at most to each
// server, which is also how many operations it runs at once on each;
// others wait for a free connection to their server as long as their
// context allows. n < 1 means DefaultMaxConns.
func WithMaxConns(n int) Option {
	return func(c *config) { c.maxConns = n }
}

// WithTimeout bounds each dial and each round trip whose context has no
// earlier deadline. d <= 0 means DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithMaxItemSize tells the Store the server's item size limit, its -I
// option. n < 1 means DefaultMaxItemSize (memcached's default, 1 MiB).
// Save refuses a payload that does not fit with ErrTooLarge.
func WithMaxItemSize(n int) Option {
	return func(c *config) { c.maxItemSize = n }
}

// WithDialer makes the Store open its connections with dial, for example
// to use TLS (tls.Dialer's DialContext), a Unix socket, or to observe the
// traffic. By default it uses a net.Dialer.
func WithDialer(dial DialFunc) Option {
	return func(c *config) { c.dial = dial }
}

// New returns a Store that keeps sessions in the memcached server at addr
// ("host:port"). It does not connect: the first operation does.
func New(addr string, opts ...Option) *Store {
	return newStore([]string{addr}, opts)
}

// NewServers returns a Store that spreads sessions over the memcached
// servers at addrs ("host:port" each) by rendezvous hashing; see the
// package documentation. Every process that shares the sessions must list
// the same addresses, written the same way, in any order. Options apply to
// each server: WithMaxConns bounds the connections to each. NewServers
// does not connect; it returns an error if addrs is empty, or lists an
// empty address or one address twice. With one address it is New.
func NewServers(addrs []string, opts ...Option) (*Store, error) {
	if err := validateAddrs(addrs); err != nil {
		return nil, err
	}
	return newStore(addrs, opts), nil
}

func newStore(addrs []string, opts []Option) *Store {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.maxConns < 1 {
		c.maxConns = DefaultMaxConns
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxItemSize < 1 {
		c.maxItemSize = DefaultMaxItemSize
	}
	if c.dial == nil {
		c.dial = (&net.Dialer{}).DialContext
	}
	s := &Store{prefix: c.prefix, maxItemSize: c.maxItemSize}
	for _, addr := range addrs {
		s.servers = append(s.servers, &server{
			addr: addr,
			seed: serverSeed(addr),
			pool: newPool(addr, c.dial, c.maxConns, c.timeout, c.maxItemSize),
		})
	}
	return s
}

// pool returns the connection pool of the server that holds k.
func (s *Store) pool(k wireKey) *pool {
	return serverFor(s.servers, k.text).pool
}

// Close closes the Store's connections to every server. Operations after
// Close fail with ErrClosed; those under way finish first and then close
// theirs.
func (s *Store) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.pool.close())
	}
	return errors.Join(errs...)
}

// Load implements store.Store with one mg command.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	k := encodeKey(s.prefix + key)
	var exp int64
	if ttl > 0 {
		exp = expiry(ttl, time.Now())
	}
	rep, err := s.pool(k).roundTrip(ctx, func(w *bufio.Writer) { writeGet(w, k, exp) })
	if oversize := (*oversizeError)(nil); errors.As(err, &oversize) {
		return nil, 0, opError("load", fmt.Errorf("%w: %w", ErrCorrupt, oversize))
	}
	if err != nil {
		return nil, 0, opError("load", err)
	}
	switch rep.code {
	case "EN":
		return nil, 0, store.ErrNotFound
	case "VA":
		if !rep.hasCAS {
			return nil, 0, opError("load", protocolErrorf("VA reply without a CAS"))
		}
		if rep.cas == 0 {
			return nil, 0, opError("load", ErrCASDisabled)
		}
		return rep.value, rep.cas, nil
	}
	return nil, 0, opError("load", protocolErrorf("mg answered %s", rep.code))
}

// Save implements store.Store with one ms command: in add mode for
// version 0, with a CAS comparison otherwise. It returns an error if
// ttl <= 0, and one wrapping ErrTooLarge if the item would exceed
// WithMaxItemSize.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, opError("save", fmt.Errorf("ttl must be positive, got %v", ttl))
	}
	k := encodeKey(s.prefix + key)
	if size := k.stored + len(data) + itemOverhead; size > s.maxItemSize {
		return 0, opError("save", fmt.Errorf("%w: %d bytes of payload, %d with the key and overhead; the limit is %d",
			ErrTooLarge, len(data), size, s.maxItemSize))
	}
	exp := expiry(ttl, time.Now())
	rep, err := s.pool(k).roundTrip(ctx, func(w *bufio.Writer) { writeSet(w, k, data, version, exp) })
	if err != nil {
		return 0, opError("save", err)
	}
	switch rep.code {
	case "HD":
		switch {
		case !rep.hasCAS:
			return 0, opError("save", protocolErrorf("ms reply without the new CAS"))
		case rep.cas == 0:
			return 0, opError("save", ErrCASDisabled)
		case rep.cas == version:
			return 0, opError("save", protocolErrorf("ms reply with the CAS the item had before"))
		}
		return rep.cas, nil
	case "NS", "EX", "NF":
		return 0, store.ErrConflict
	}
	return 0, opError("save", protocolErrorf("ms answered %s", rep.code))
}

// Delete implements store.Store with one md command.
func (s *Store) Delete(ctx context.Context, key string) error {
	k := encodeKey(s.prefix + key)
	rep, err := s.pool(k).roundTrip(ctx, func(w *bufio.Writer) { writeDelete(w, k) })
	if err != nil {
		return opError("delete", err)
	}
	switch rep.code {
	case "HD", "NF":
		return nil
	}
	return opError("delete", protocolErrorf("md answered %s", rep.code))
}

// An operationError is the error of one operation: "memcachedstore:
// <op>: <cause>".
type operationError struct {
	op  string
	err error
}

func opError(op string, err error) error { return &operationError{op: op, err: err} }

func (e *operationError) Error() string {
	return "memcachedstore: " + e.op + ": " + strings.TrimPrefix(e.err.Error(), "memcachedstore: ")
}

func (e *operationError) Unwrap() error { return e.err }
