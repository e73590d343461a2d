// Package redisstore keeps sessions in Redis (6.2 or later), standalone,
// behind Sentinel or in a Cluster.
//
// Each session is one string key: the key the store is given, which
// ginsession forms as its KeyPrefix ("session:") followed by the session
// ID, with WithPrefix's prefix, if any, in front. Its value is the entry's
// version, 8 bytes big-endian, followed by the payload, and Redis expires
// it. Every operation is one round trip:
//
//	Load, ttl > 0      GETEX key PX ttl
//	Load, ttl <= 0     GET key
//	Save, version 0    SET key value NX PX ttl
//	Save, version v    EVALSHA of a script that compares the first 8 bytes
//	                   with v and only then runs SET key value PX ttl
//	Delete             DEL key
//
// A SET NX that finds the key taken is followed by a GETRANGE (see Retried
// writes). The first Save with a version on each Redis node may be answered NOSCRIPT,
// and is then sent once more as EVAL, which caches the script on that node.
//
// A new version is a random non-zero 64-bit number that differs from the
// one it replaces. Versions of one key are therefore unique with
// overwhelming probability, also across Delete and expiry, without any
// counter kept in Redis.
//
// # Retried writes
//
// go-redis sends a command again when its reply does not come in time
// (Options.ReadTimeout, MaxRetries): Redis may then run it twice, the
// original once Redis answers again and the copy after it. Save picks the
// new version before it sends anything, so it can tell its own write from
// another writer's: the compare-and-set script also answers "done",
// without writing again, when the key already holds the version this Save
// is writing, and a SET NX that finds the key taken reads the key's
// version (one more round trip, on that path only) and reports success if
// it is this Save's. A Save that Redis ran twice thus returns the new
// version, not store.ErrConflict, and the caller does not apply its
// change a second time. If yet another writer saved between the two runs,
// the copy still gets ErrConflict.
//
// # Foreign entries
//
// A key that holds a value this package did not write is left alone: Load
// returns an error wrapping ErrCorrupt, both for a string that is not a
// session (shorter than the version, or with version 0) and for a list,
// hash, set, sorted set or stream, which Redis answers with WRONGTYPE. Save
// over such a key returns store.ErrConflict; Delete removes it.
//
// # Redis Cluster
//
// A *redis.ClusterClient learns of a failover from MOVED, ASK and READONLY
// replies and otherwise reloads its slot map only every ClusterStateReloadInterval
// (60 s by default): while a dead master's address keeps failing to
// connect, it keeps sending that shard's commands there. When the Store's
// client has a ReloadState method, as *redis.ClusterClient has, the Store
// calls it after a command fails for a reason that may mean the cluster
// changed (connection refused or reset, timeout, CLUSTERDOWN, TRYAGAIN,
// MASTERDOWN, READONLY, MOVED, ASK), at most once every 250 ms. With
// go-redis's default options and cluster-node-timeout 2000, a killed
// master's sessions were served again 0.05-0.9 s after its replica's
// promotion (3.6-4.7 s after the kill), instead of 54 s after it.
//
// # Outages
//
// The Store sets no timeouts: the client's options decide how long a
// request waits for a Redis that does not answer. go-redis v9.22's
// defaults are DialTimeout 5 s with 5 dial attempts 100 ms apart,
// ReadTimeout and WriteTimeout 5 s, MaxRetries 3 (4 attempts; a Cluster
// client makes 4 too, by MaxRedirects), PoolTimeout 6 s and ContextTimeoutEnabled false, under which
// a context's deadline bounds dials and backoffs but not a read in
// progress. One command then fails after about 1.7 s when the server is
// down, after 5 to 20 s when it stalls, and after about 100 s when its
// host drops packets. Lower ReadTimeout, WriteTimeout, DialTimeout,
// DialerRetries and MaxRetries, and set ContextTimeoutEnabled, to bound
// it; the README has the measurements.
package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
)

// versionLen is the length of the version that starts every stored value.
const versionLen = 8

// ErrCorrupt is wrapped by the error Load returns when a key holds a value
// that this package did not write: a string shorter than the 8-byte
// version or with version 0, or another Redis type (list, hash, set,
// sorted set, stream). Save treats such an entry as a conflict; Delete
// removes it.
var ErrCorrupt = store.NewCorruptError("redisstore: corrupt entry")

// compareAndSetSrc replaces the value under KEYS[1] with ARGV[2], to expire
// in ARGV[3] milliseconds, if its first 8 bytes equal ARGV[1], and returns
// 1. It also returns 1, without writing, if the first 8 bytes already equal
// those of ARGV[2]: the new version, which Save draws afresh for each call,
// so that the key holds it only if this very call was run before (go-redis
// resends a command whose reply timed out). Otherwise it returns 0. A
// missing key reads as "", and a key of another type as an error (pcall),
// so neither ever matches.
const compareAndSetSrc = `
local v = redis.pcall('GETRANGE', KEYS[1], 0, 7)
if v == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
if v == string.sub(ARGV[2], 1, 8) then
	return 1
end
return 0
`

// compareAndSetSHA is the SHA-1 digest by which EVALSHA names the script.
var compareAndSetSHA = func() string {
	sum := sha1.Sum([]byte(compareAndSetSrc))
	return hex.EncodeToString(sum[:])
}()

// Store is a store.Store backed by Redis. It is safe for concurrent use.
//
// Its errors never contain keys: a key holds a session ID, which must not
// end up in logs.
type Store struct {
	client redis.UniversalClient
	prefix string

	// reloader is the client if it caches a Cluster's slot map, else nil.
	reloader stateReloader
	// lastReload is when reloader was last asked to reload, in Unix
	// nanoseconds.
	lastReload atomic.Int64
}

// stateReloader is a client that caches a Redis Cluster's slot map and can
// be told to load it again, such as *redis.ClusterClient.
type stateReloader interface {
	ReloadState(ctx context.Context)
}

// reloadInterval is the least time between two reloads of a Cluster's slot
// map that the Store asks for, so that an outage, which fails every
// command, does not have every command also query the cluster.
const reloadInterval = 250 * time.Millisecond

var _ store.Store = (*Store)(nil)

// An Option configures a Store.
type Option func(*Store)

// WithPrefix puts prefix in front of every key the Store is given. There
// is none by default: ginsession already prefixes its keys (Options.KeyPrefix),
// which is where an application sharing a Redis database with others
// normally sets its own. In a Cluster, a prefix must not contain a hash tag
// ("{...}"), or every session would land in the same slot.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = prefix }
}

// New returns a Store that keeps sessions through client: a *redis.Client,
// a *redis.ClusterClient, a failover client from redis.NewFailoverClient,
// or whatever redis.NewUniversalClient returns. The Store never closes the
// client. If the client is a *redis.ClusterClient (or has its ReloadState
// method), the Store has it reload the cluster's slot map after errors
// that may come from a failover; see the package documentation.
func New(client redis.UniversalClient, opts ...Option) *Store {
	s := &Store{client: client}
	s.reloader, _ = client.(stateReloader)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Load implements store.Store with one GETEX (ttl > 0) or GET.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	a := &args{key: s.prefix + key}
	var cmd *redis.StringCmd
	if ttl > 0 {
		a.millis = millis(ttl)
		cmd = redis.NewStringCmd(ctx, "getex", &a.key, "px", &a.millis)
	} else {
		cmd = redis.NewStringCmd(ctx, "get", &a.key)
	}
	_ = s.client.Process(ctx, cmd) // the error is also in cmd
	val, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, 0, store.ErrNotFound
	}
	if err != nil {
		if redis.HasErrorPrefix(err, "WRONGTYPE") {
			return nil, 0, fmt.Errorf("%w: the key holds a list, hash, set, sorted set or stream, not a string (%w)", ErrCorrupt, err)
		}
		s.failed(ctx, err)
		return nil, 0, fmt.Errorf("redisstore: load: %w", err)
	}
	if len(val) < versionLen {
		return nil, 0, fmt.Errorf("%w: the value is %d bytes, fewer than the %d-byte version", ErrCorrupt, len(val), versionLen)
	}
	version := binary.BigEndian.Uint64(val)
	if version == 0 {
		return nil, 0, fmt.Errorf("%w: the value holds version 0", ErrCorrupt)
	}
	return val[versionLen:], version, nil
}

// Save implements store.Store with one SET NX (version 0) or one run of a
// compare-and-set script. It returns an error if ttl <= 0.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("redisstore: save: ttl must be positive, got %v", ttl)
	}
	newVersion := nextVersion(version)
	a := &args{key: s.prefix + key, millis: millis(ttl), value: make(bytesArg, versionLen+len(data))}
	binary.BigEndian.PutUint64(a.value, newVersion)
	copy(a.value[versionLen:], data)

	if version == 0 {
		cmd := redis.NewStatusCmd(ctx, "set", &a.key, &a.value, "nx", "px", &a.millis)
		err := s.client.Process(ctx, cmd)
		if errors.Is(err, redis.Nil) {
			// The key exists: another writer's, or this one's if go-redis
			// sent the SET twice (see "Retried writes").
			return s.ownWrite(ctx, a, newVersion)
		}
		if err != nil {
			s.failed(ctx, err)
			return 0, fmt.Errorf("redisstore: save: %w", err)
		}
		return newVersion, nil
	}

	binary.BigEndian.PutUint64(a.expected[:], version)
	// EVALSHA, then EVAL if this node has not cached the script yet, as
	// redis.Script.Run does. numkeys is the string "1" so that a Cluster
	// client finds the key without formatting a number.
	cmd := redis.NewCmd(ctx, "evalsha", &compareAndSetSHA, "1", &a.key, &a.expected, &a.value, &a.millis)
	err := s.client.Process(ctx, cmd)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = redis.NewCmd(ctx, "eval", compareAndSetSrc, "1", &a.key, &a.expected, &a.value, &a.millis)
		err = s.client.Process(ctx, cmd)
	}
	if err != nil {
		s.failed(ctx, err)
		return 0, fmt.Errorf("redisstore: save: %w", err)
	}
	replaced, err := cmd.Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: save: %w", err)
	}
	if replaced != 1 {
		return 0, store.ErrConflict
	}
	return newVersion, nil
}

// ownWrite is called when SET NX found the key taken. It reads the key's
// version with GETRANGE and returns newVersion if the key holds it, which
// means that this Save's SET already ran, and ErrConflict if not.
func (s *Store) ownWrite(ctx context.Context, a *args, newVersion uint64) (uint64, error) {
	cmd := redis.NewStringCmd(ctx, "getrange", &a.key, "0", "7")
	_ = s.client.Process(ctx, cmd) // the error is also in cmd
	head, err := cmd.Bytes()
	switch {
	case err == nil:
		if len(head) == versionLen && binary.BigEndian.Uint64(head) == newVersion {
			return newVersion, nil
		}
		return 0, store.ErrConflict
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return 0, store.ErrConflict
	default:
		// Whether the SET ran is unknown, as after any failed Save.
		s.failed(ctx, err)
		return 0, fmt.Errorf("redisstore: save: %w", err)
	}
}

// args holds the arguments of one command. They go to go-redis as
// pointers (*string, *int64) or as encoding.BinaryMarshaler, which it
// writes as they are, so that a command's arguments cost one allocation
// instead of one each: a string, slice or large integer put in an
// interface is copied to the heap, a pointer is not.
type args struct {
	key      string
	millis   int64
	expected versionArg
	value    bytesArg
}

// versionArg is a version as sent to Redis: 8 bytes, big-endian.
type versionArg [versionLen]byte

// MarshalBinary returns v's bytes, for go-redis.
func (v *versionArg) MarshalBinary() ([]byte, error) { return v[:], nil }

// bytesArg is a binary argument.
type bytesArg []byte

// MarshalBinary returns b, for go-redis.
func (b *bytesArg) MarshalBinary() ([]byte, error) { return *b, nil }

// Delete implements store.Store with one DEL.
func (s *Store) Delete(ctx context.Context, key string) error {
	k := s.prefix + key
	if err := s.client.Del(ctx, k).Err(); err != nil {
		s.failed(ctx, err)
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// failed is called with the error of a command that failed. If the client
// caches a Cluster's slot map and err may mean that the cluster changed,
// it asks the client to reload the map, unless it did so less than
// reloadInterval ago. The reload runs in the background.
func (s *Store) failed(ctx context.Context, err error) {
	if s.reloader == nil || !topologyError(err) {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastReload.Load()
	if now-last < int64(reloadInterval) || !s.lastReload.CompareAndSwap(last, now) {
		return
	}
	s.reloader.ReloadState(ctx)
}

// topologyError reports whether err, from a command sent through a
// Cluster client, may mean that the node it went to is no longer the one
// serving its slot: the node could not be reached or did not answer in
// time (a dead master is one), or it said the cluster is changing. Redis's
// replies to the command itself (WRONGTYPE, NOSCRIPT, ...) and the
// caller's cancellation say nothing about the cluster.
func topologyError(err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, redis.ErrClosed):
		return false
	case redis.IsClusterDownError(err), redis.IsTryAgainError(err), redis.IsMasterDownError(err),
		redis.IsReadOnlyError(err):
		return true
	}
	if _, moved := redis.IsMovedError(err); moved {
		return true
	}
	if _, ask := redis.IsAskError(err); ask {
		return true
	}
	var reply redis.Error
	return !errors.As(err, &reply) // not a reply: a network error, a timeout
}

// nextVersion returns a random version that is neither 0 nor old.
func nextVersion(old uint64) uint64 {
	for {
		if v := rand.Uint64(); v != 0 && v != old {
			return v
		}
	}
}

// millis returns ttl in whole milliseconds, at least 1.
func millis(ttl time.Duration) int64 {
	return max(ttl.Milliseconds(), 1)
}
