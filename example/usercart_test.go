package main

import (
	"context"
	"sync"
	"testing"

	"github.com/ginsession/ginsession/store/memstore"
)

func TestCartChanges(t *testing.T) {
	var none Cart // what ginsession.Update passes when the key is absent
	if got := addItems("mug", 2)(none).String(); got != "mug=2" {
		t.Errorf("add to a nil cart: %s", got)
	}
	c := Cart{"mug": 98, "tee": 1}
	if got := addItems("mug", 5)(c).String(); got != "mug=99 tee=1" {
		t.Errorf("add caps at 99: %s", got)
	}
	if c.String() != "mug=98 tee=1" {
		t.Errorf("a change modified its input: %s", c)
	}
	if got := setQty("tee", 4)(c).String(); got != "mug=98 tee=4" {
		t.Errorf("set: %s", got)
	}
	if got := removeItem("mug")(c).String(); got != "tee=1" {
		t.Errorf("remove: %s", got)
	}
	if got := mergeCarts(Cart{"mug": 5, "socks": 1})(c).String(); got != "mug=99 socks=1 tee=1" {
		t.Errorf("merge: %s", got)
	}
	if got := emptyCart(c); len(got) != 0 {
		t.Errorf("empty: %s", got)
	}
	lines, total := Cart{"tee": 2, "mug": 1, "gone": 3}.lines()
	if len(lines) != 2 || lines[0].Product.ID != "mug" || lines[1].Total != 4800 || total != 6000 {
		t.Errorf("lines = %+v, total %d", lines, total)
	}
	if money(950) != "$9.50" || money(4900) != "$49.00" {
		t.Errorf("money: %s %s", money(950), money(4900))
	}
}

func TestUserCartsUpdateIsAtomic(t *testing.T) {
	u := &userCarts{store: memstore.New(), prefix: "t:cart:", ttl: savedCartTTL, attempts: 50}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := u.Update(ctx, "alice", addItems("mug", 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := u.Load(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "mug=40" {
		t.Errorf("after 40 concurrent adds: %s", got)
	}
	if other, _ := u.Load(ctx, "bob"); len(other) != 0 {
		t.Errorf("bob's cart: %s", other)
	}
	// An emptied cart is stored as empty, not deleted, so a concurrent
	// conditional write still conflicts rather than resurrecting items.
	if got, err := u.Update(ctx, "alice", emptyCart); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
	if got, _ := u.Load(ctx, "alice"); len(got) != 0 {
		t.Errorf("after emptying: %s", got)
	}
}
