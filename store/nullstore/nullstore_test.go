package nullstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/nullstore"
)

// The null store cannot pass the conformance suite (it keeps nothing by
// design); these tests pin down what it promises instead.
func TestNullStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := nullstore.New()
	v, err := s.Save(ctx, "k", []byte("data"), 0, time.Minute)
	if err != nil || v == 0 {
		t.Fatalf("Save = %d, %v", v, err)
	}
	if v2, err := s.Save(ctx, "k", []byte("data"), v, time.Minute); err != nil || v2 == v || v2 == 0 {
		t.Fatalf("second Save = %d, %v", v2, err)
	}
	if _, _, err := s.Load(ctx, "k", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after Save = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Load(canceled, "k", 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load with a canceled context = %v", err)
	}
}
