package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

func Example() {
	ctx := context.Background()
	s := memstore.New()

	v1, _ := s.Save(ctx, "session-id", []byte("cart=3"), 0, 30*time.Minute)
	data, v, _ := s.Load(ctx, "session-id", 30*time.Minute) // also renews the expiry
	fmt.Printf("%s, same version: %t\n", data, v == v1)

	// A writer holding an old version loses to the one that saved first.
	v2, _ := s.Save(ctx, "session-id", []byte("cart=4"), v1, 30*time.Minute)
	_, err := s.Save(ctx, "session-id", []byte("cart=5"), v1, 30*time.Minute)
	fmt.Println(errors.Is(err, store.ErrConflict), v2 != v1)

	_ = s.Delete(ctx, "session-id")
	_, _, err = s.Load(ctx, "session-id", 0)
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// cart=3, same version: true
	// true true
	// true
}
