package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/filestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// Processes that share dir share the sessions.
	s, err := filestore.New(dir)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	v1, _ := s.Save(ctx, "session:abc", []byte("cart=3"), 0, 30*time.Minute)
	data, v, _ := s.Load(ctx, "session:abc", 30*time.Minute) // also renews the expiry
	fmt.Printf("%s, same version: %t\n", data, v == v1)

	// A writer holding an old version loses to the one that saved first.
	_, _ = s.Save(ctx, "session:abc", []byte("cart=4"), v1, 30*time.Minute)
	_, err = s.Save(ctx, "session:abc", []byte("cart=5"), v1, 30*time.Minute)
	fmt.Println(errors.Is(err, store.ErrConflict))
	// Output:
	// cart=3, same version: true
	// true
}

func ExampleStore_DeleteExpired() {
	s, err := filestore.New("/var/lib/myapp/sessions")
	if err != nil {
		panic(err)
	}
	// Save already removes expired files a batch at a time; a program that
	// would rather do it all at once, at a quiet hour, calls DeleteExpired.
	n, err := s.DeleteExpired(context.Background())
	if err != nil {
		fmt.Println("cleanup:", err)
	}
	fmt.Println("removed", n, "expired sessions")
}

func ExampleWithMaxEntries() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	s, err := filestore.New(dir,
		filestore.WithMaxEntries(2),   // at most 2 sessions: the soonest to expire go first
		filestore.WithFileMode(0o660), // group members may share the store
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for i, key := range []string{"session:a", "session:b", "session:c"} {
		_, _ = s.Save(ctx, key, []byte("x"), 0, time.Duration(i+1)*time.Hour)
	}
	for _, key := range []string{"session:a", "session:b", "session:c"} {
		_, _, err := s.Load(ctx, key, 0)
		fmt.Println(key, err == nil)
	}
	// Output:
	// session:a false
	// session:b true
	// session:c true
}
