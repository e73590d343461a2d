// Package mongostore keeps sessions in a MongoDB collection.
//
// Each session is one document, whose _id is the key the store is given
// (ginsession forms it as its KeyPrefix, "session:", followed by the
// session ID):
//
//	{_id: key, data: BinData(0, payload), version: NumberLong(v), expires: ISODate(...)}
//
// Every operation is one command, so one round trip:
//
//	Load, ttl > 0      findAndModify  {_id: key, expires: {$gt: now}}, {$set: {expires: now+ttl}},
//	                                  returning the document as it was
//	Load, ttl <= 0     find           {_id: key, expires: {$gt: now}}, limit 1
//	Save, version 0    update         {_id: key, expires: {$not: {$gt: now}}}, {$set: ...}, upsert
//	Save, version v    update         {_id: key, version: v, expires: {$gt: now}}, {$set: ...}
//	Delete             delete         {_id: key}, limit 1
//
// A Save of a new session replaces an expired document that MongoDB has
// not evicted yet, and inserts one if there is none; if a live document
// holds the key, the insert fails on the unique _id index and Save
// returns store.ErrConflict.
//
// The application's clock defines "now": the Store puts its own time into
// every filter, so a document expires when the application's clock says
// so, whether or not MongoDB has evicted it. The TTL index that
// EnsureIndexes creates only lets MongoDB delete expired documents in the
// background (its monitor runs once a minute); correctness never depends
// on it.
//
// A new version is a random non-zero 64-bit number that differs from the
// one it replaces, stored as the int64 with the same bits.
package mongostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/ginsession/ginsession/store"
)

// Field names of a session document.
const (
	fieldID      = "_id"
	fieldData    = "data"
	fieldVersion = "version"
	fieldExpires = "expires"
)

// ErrCorrupt is wrapped by the error Load returns when a live document
// under the key was not written by this package: its data is not binary,
// or its version is missing, not a 64-bit integer, or 0. Save with version
// 0 treats such a document as a conflict, as it does any live document;
// Delete removes it.
var ErrCorrupt = errors.New("mongostore: corrupt document")

// errUnacknowledged is returned by Save under a write concern of w: 0,
// which leaves it no way to tell a conflict from a success.
var errUnacknowledged = errors.New("mongostore: save: the collection's write concern is unacknowledged (w: 0); compare-and-set needs an acknowledged one")

// Store is a store.Store backed by a MongoDB collection. It is safe for
// concurrent use.
//
// Its errors never contain keys: a key holds a session ID, which must not
// end up in logs.
type Store struct {
	coll *mongo.Collection
	now  func() time.Time

	sweepInterval time.Duration                  // 0: no sweep
	sweepReport   func(deleted int64, err error) // nil: log errors
	sweeper       *store.Sweeper                 // nil without a sweep
}

var _ store.Store = (*Store)(nil)

// An Option configures a Store.
type Option func(*Store)

// WithClock makes the Store take the current time from now instead of
// time.Now. The time decides which documents are live and when saved or
// renewed ones expire. Every Store sharing a collection should see the
// same time: clocks that differ by d make sessions last up to d longer or
// shorter.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// New returns a Store that keeps sessions in coll, which should hold
// nothing else. The Store reads from the primary, whatever coll's read
// preference: a session must be read where it was just written. Its writes
// use coll's write concern, which must be acknowledged (not w: 0);
// "majority" keeps a session through a failover.
// Call EnsureIndexes once, for example at start-up, to have MongoDB evict
// expired sessions. With WithSweepInterval, New starts a goroutine that
// Close stops; the Store never disconnects the client.
func New(coll *mongo.Collection, opts ...Option) *Store {
	s := &Store{
		coll: coll.Clone(options.Collection().SetReadPreference(readpref.Primary())),
		now:  time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	s.startSweep()
	return s
}

// EnsureIndexes creates, if it does not exist yet, a TTL index on the
// expires field with expireAfterSeconds 0, so that MongoDB deletes each
// session document once it has expired. It is safe to call more than once
// and from several processes at once. Sessions expire on time without the
// index too, but their documents then stay until they are overwritten or
// deleted (see DeleteExpired).
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: fieldExpires, Value: 1}},
		Options: options.Index().SetExpireAfterSeconds(0),
	})
	if err != nil {
		return fmt.Errorf("mongostore: ensure indexes: %w", err)
	}
	return nil
}

// DeleteExpired deletes every session document that has expired, with
// one delete command, and returns how many it deleted. It is only needed
// where the TTL index of EnsureIndexes is not available, as on FerretDB
// v1: there, call it now and then, or let the Store call it with
// WithSweepInterval.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: fieldExpires, Value: notLive(s.nowMillis())}})
	if err != nil {
		return 0, fmt.Errorf("mongostore: delete expired: %w", err)
	}
	return res.DeletedCount, nil
}

// Load implements store.Store with one findAndModify (ttl > 0) or one
// find.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	now := s.nowMillis()
	filter := bson.D{{Key: fieldID, Value: key}, {Key: fieldExpires, Value: live(now)}}
	var res *mongo.SingleResult
	if ttl > 0 {
		update := bson.D{{Key: "$set", Value: bson.D{{Key: fieldExpires, Value: expiry(now, ttl)}}}}
		res = s.coll.FindOneAndUpdate(ctx, filter, update)
	} else {
		res = s.coll.FindOne(ctx, filter)
	}
	doc, err := res.Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, 0, store.ErrNotFound
	}
	if err != nil {
		return nil, 0, wrap("load", key, err)
	}
	return decode(doc)
}

// decode returns the payload and version of a session document.
func decode(doc bson.Raw) ([]byte, uint64, error) {
	subtype, data, ok := doc.Lookup(fieldData).BinaryOK()
	if !ok || subtype != bson.TypeBinaryGeneric {
		return nil, 0, fmt.Errorf("%w: %s is not generic binary data", ErrCorrupt, fieldData)
	}
	v, ok := doc.Lookup(fieldVersion).Int64OK()
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s is not a 64-bit integer", ErrCorrupt, fieldVersion)
	}
	if v == 0 {
		return nil, 0, fmt.Errorf("%w: %s is 0", ErrCorrupt, fieldVersion)
	}
	// data points into a buffer of the driver's; the caller gets its own.
	return bytes.Clone(data), uint64(v), nil
}

// Save implements store.Store with one update command: an upsert for
// version 0, a conditional update otherwise. It returns an error if
// ttl <= 0.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("mongostore: save: ttl must be positive, got %v", ttl)
	}
	now := s.nowMillis()
	newVersion := nextVersion(version)
	set := bson.D{{Key: "$set", Value: bson.D{
		{Key: fieldData, Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: data}},
		{Key: fieldVersion, Value: int64(newVersion)},
		{Key: fieldExpires, Value: expiry(now, ttl)},
	}}}

	if version == 0 {
		// Matches an expired document (or one without a valid expiry) and
		// replaces it; matches nothing if there is none or a live one, and
		// then inserts, which the unique _id index refuses if a live one
		// exists, or if a concurrent Save created one first.
		filter := bson.D{{Key: fieldID, Value: key}, {Key: fieldExpires, Value: notLive(now)}}
		res, err := s.coll.UpdateOne(ctx, filter, set, options.UpdateOne().SetUpsert(true))
		if mongo.IsDuplicateKeyError(err) {
			// The server's message quotes the key; it goes no further.
			return 0, store.ErrConflict
		}
		if err != nil {
			return 0, wrap("save", key, err)
		}
		if !res.Acknowledged {
			return 0, errUnacknowledged
		}
		if res.MatchedCount == 0 && res.UpsertedCount == 0 {
			return 0, errors.New("mongostore: save: the server neither updated nor inserted the document")
		}
		return newVersion, nil
	}

	filter := bson.D{
		{Key: fieldID, Value: key},
		{Key: fieldVersion, Value: int64(version)},
		{Key: fieldExpires, Value: live(now)},
	}
	res, err := s.coll.UpdateOne(ctx, filter, set)
	if err != nil {
		return 0, wrap("save", key, err)
	}
	if !res.Acknowledged {
		return 0, errUnacknowledged
	}
	if res.MatchedCount == 0 {
		return 0, store.ErrConflict
	}
	return newVersion, nil
}

// Delete implements store.Store with one delete command.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: fieldID, Value: key}}); err != nil {
		return wrap("delete", key, err)
	}
	return nil
}

// nowMillis returns the current time in BSON's resolution: whole
// milliseconds, rounded down.
func (s *Store) nowMillis() bson.DateTime {
	return bson.DateTime(s.now().UnixMilli())
}

// expiry returns now+ttl in whole milliseconds, rounded up so that an
// entry lives at least ttl.
func expiry(now bson.DateTime, ttl time.Duration) bson.DateTime {
	ms := ttl.Milliseconds()
	if time.Duration(ms)*time.Millisecond < ttl {
		ms++
	}
	return now + bson.DateTime(ms)
}

// live is the condition on the expires field of a document that has not
// expired by now. It matches only dates: a missing or non-date expiry is
// never live.
func live(now bson.DateTime) bson.D {
	return bson.D{{Key: "$gt", Value: now}}
}

// notLive is the condition on the expires field of a document that is not
// live: the negation of live.
func notLive(now bson.DateTime) bson.D {
	return bson.D{{Key: "$not", Value: live(now)}}
}

// nextVersion returns a random version that is neither 0 nor old.
func nextVersion(old uint64) uint64 {
	for {
		if v := rand.Uint64(); v != 0 && v != old {
			return v
		}
	}
}

// wrap returns err wrapped with the operation's name. If err's message
// contains key, as a server's message may quote a filter, the message is
// redacted; errors.Is and errors.As still reach err.
func wrap(op, key string, err error) error {
	if msg := err.Error(); key != "" && strings.Contains(msg, key) {
		err = redacted{err: err, msg: strings.ReplaceAll(msg, key, "<key>")}
	}
	return fmt.Errorf("mongostore: %s: %w", op, err)
}

// redacted is an error with a message of its own in place of err's.
type redacted struct {
	err error
	msg string
}

func (r redacted) Error() string { return r.msg }

func (r redacted) Unwrap() error { return r.err }
