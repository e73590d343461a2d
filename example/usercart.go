package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ginsession/ginsession/store"
)

// userCarts keeps each logged-in user's cart in the same store as the
// sessions, under its own key ("shop:cart:alice"), so that it follows the
// user to every browser they log in from and outlives any one session.
//
// It uses the store's versioned compare-and-set directly, the way
// ginsession does for sessions: Update loads the cart, applies a pure
// function and saves only if nobody else saved in between; otherwise it
// loads again and re-applies the function. Two browsers adding at the same
// moment therefore lose nothing.
type userCarts struct {
	store    store.Store
	prefix   string        // e.g. "shop:cart:"
	ttl      time.Duration // how long an untouched cart is kept
	attempts int           // bound on compare-and-set retries
}

// errCartBusy reports an Update that lost the race more often than allowed.
var errCartBusy = errors.New("the cart changed too often at once; try again")

func (u *userCarts) key(user string) string { return u.prefix + user }

// Load returns user's saved cart (empty if there is none) and renews its
// expiry.
func (u *userCarts) Load(ctx context.Context, user string) (Cart, error) {
	cart, _, err := u.load(ctx, user, u.ttl)
	return cart, err
}

func (u *userCarts) load(ctx context.Context, user string, ttl time.Duration) (Cart, uint64, error) {
	data, version, err := u.store.Load(ctx, u.key(user), ttl)
	if errors.Is(err, store.ErrNotFound) {
		return Cart{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("loading the saved cart: %w", err)
	}
	var cart Cart
	if err := json.Unmarshal(data, &cart); err != nil {
		// Not ours to fix: start from an empty cart and overwrite it.
		return Cart{}, version, nil
	}
	if cart == nil {
		cart = Cart{}
	}
	return cart, version, nil
}

// Update applies change to user's saved cart atomically and returns the
// cart as saved. change may run more than once and must not have side
// effects.
func (u *userCarts) Update(ctx context.Context, user string, change func(Cart) Cart) (Cart, error) {
	for attempt := 1; ; attempt++ {
		cart, version, err := u.load(ctx, user, 0)
		if err != nil {
			return nil, err
		}
		cart = change(cart)
		data, err := json.Marshal(cart)
		if err != nil {
			return nil, err
		}
		// An emptied cart is saved as {} rather than deleted: Delete is not
		// conditional, and would erase an item another browser added
		// meanwhile.
		_, err = u.store.Save(ctx, u.key(user), data, version, u.ttl)
		if err == nil {
			return cart, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("saving the cart: %w", err)
		}
		if attempt >= u.attempts {
			return nil, errCartBusy
		}
		// Spread racing writers out a little, more after each lost race.
		time.Sleep(time.Duration(rand.N(attempt*200)+50) * time.Microsecond)
	}
}
