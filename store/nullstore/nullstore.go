// Package nullstore is a store.Store that keeps nothing: every Load finds
// no session and every Save is dropped. It switches sessions off without
// changing handler code, as Flask-Session's null interface does. It
// implements store.KeepsNothing, so ginsession knows: handlers see an
// empty session on every request, every change (Set, Update, AddFlash,
// Regenerate...) returns an error wrapping ginsession.ErrSessionsDisabled,
// as Flask's null session refuses writes, and no cookie is ever sent.
//
// Use it in tests that must not depend on session state, or to measure an
// application with sessions switched off.
package nullstore

import (
	"context"
	"time"

	"github.com/ginsession/ginsession/store"
)

// Store keeps nothing. The zero value is ready to use.
type Store struct{}

var _ store.KeepsNothing = Store{}

// KeepsNothing marks the Store as one that keeps nothing on purpose; see
// store.KeepsNothing.
func (Store) KeepsNothing() {}

// New returns a Store.
func New() Store { return Store{} }

// Load always returns store.ErrNotFound, or ctx's error if it is done.
func (Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return nil, 0, store.ErrNotFound
}

// Save drops data and reports success with version 1 (or 2 when asked to
// replace version 1), so a caller's bookkeeping stays consistent.
func (Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if version == 1 {
		return 2, nil
	}
	return 1, nil
}

// Delete does nothing.
func (Store) Delete(ctx context.Context, key string) error { return ctx.Err() }
