// Package store defines the contract between ginsession and the places
// where sessions are kept.
//
// A Store keeps opaque byte payloads under string keys, each with a
// version and an expiry. ginsession encodes the payload itself; a store
// never looks inside it. Every store in this module runs the same
// conformance suite, in package storetest, against its real server.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Load when no live entry is stored under a key:
// it was never saved, it was deleted, or it has expired (whether or not the
// backend has evicted it yet).
var ErrNotFound = errors.New("store: session not found")

// ErrConflict is returned by Save when the stored version is not the one
// the caller expected: another writer got there first, or the entry was
// deleted or has expired since it was loaded.
var ErrConflict = errors.New("store: version conflict")

// ErrCorrupt is wrapped by the error Load returns when the entry under a
// key exists but was not written by the Store (damaged, or in another
// format). Callers treat the entry as unusable but leave it alone: it is
// not "absent", so it must not be overwritten as if it were. Each store's
// own ErrCorrupt wraps this one.
var ErrCorrupt = errors.New("store: corrupt entry")

// NewCorruptError returns an error whose message is msg and which wraps
// ErrCorrupt, for a store to declare its own ErrCorrupt.
func NewCorruptError(msg string) error { return corruptError(msg) }

type corruptError string

func (e corruptError) Error() string { return string(e) }
func (e corruptError) Unwrap() error { return ErrCorrupt }

// A Store keeps session payloads. Implementations must be safe for
// concurrent use by many goroutines and, where the backend is shared, by
// many processes.
//
// Versions are opaque to callers. Zero means "no entry": a Store never
// reports version 0 for an entry that exists, and Save with version 0
// creates an entry only if none exists. A Store never hands out the same
// version twice for one key, even after Delete: a writer holding a version
// from before a Delete always gets ErrConflict.
//
// A version drawn at random from the 2^64-1 non-zero values meets this
// rule in practice; a counter meets it exactly.
//
// Errors must not contain the key: it holds a session ID, and errors end
// up in logs and traces.
//
// Implementations may return ErrNotFound and ErrConflict wrapped; callers
// test for them with errors.Is. Other errors mean the backend could not
// answer; callers must not treat them as "absent". After such an error
// from Save or Delete the change may or may not have been made, so the
// caller must Load again before relying on either. Implementations wrap
// the underlying error with %w, including that of a canceled context.
//
// Durations are honoured to the backend's resolution: a store whose
// backend counts whole seconds may round ttl up to the next second, so an
// entry lives at least ttl and at most a second more.
type Store interface {
	// Load returns a copy of the payload stored under key and its version.
	// It returns ErrNotFound if there is no live entry.
	//
	// If ttl > 0, the entry's expiry is reset to ttl from now as part of
	// the same operation (one round trip where the backend allows it),
	// without rewriting the payload and without changing the version.
	// If ttl <= 0 the expiry is left as it is.
	Load(ctx context.Context, key string, ttl time.Duration) (data []byte, version uint64, err error)

	// Save stores data under key, to expire ttl from now, if and only if
	// the stored version equals version (0: no live entry may exist). On
	// success it returns the new version, which is never 0 and never equal
	// to version. Otherwise it returns ErrConflict and changes nothing.
	// Save does not keep or modify data after it returns. ttl must be > 0.
	Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (newVersion uint64, err error)

	// Delete removes the entry under key, whatever its version. Deleting a
	// missing entry is not an error. After Delete, Save with the version
	// the entry had fails with ErrConflict.
	Delete(ctx context.Context, key string) error
}

// KeepsNothing is implemented by a Store that keeps nothing on purpose,
// such as package nullstore: sessions are switched off. ginsession then
// never loads a session nor sends a cookie, and refuses every change with
// an error, instead of accepting changes that would silently be lost.
type KeepsNothing interface {
	Store
	KeepsNothing()
}
