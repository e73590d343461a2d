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

func ExampleNew() {
	ctx := context.Background()
	s := memstore.New(memstore.WithMaxEntries(2), memstore.WithMaxBytes(1<<20))

	_, _ = s.Save(ctx, "a", []byte("1"), 0, 1*time.Hour)
	_, _ = s.Save(ctx, "b", []byte("2"), 0, 2*time.Hour)
	_, _, _ = s.Load(ctx, "a", 3*time.Hour) // "a" now expires after "b"
	_, _ = s.Save(ctx, "c", []byte("3"), 0, 2*time.Hour)

	_, _, err := s.Load(ctx, "b", 0)
	fmt.Println("b evicted:", errors.Is(err, store.ErrNotFound))
	fmt.Printf("%+v\n", s.Stats())

	_, err = s.Save(ctx, "big", make([]byte, 2<<20), 0, time.Hour)
	fmt.Println(errors.Is(err, memstore.ErrTooLarge))
	// Output:
	// b evicted: true
	// {Entries:2 Bytes:4 Evictions:1}
	// true
}
