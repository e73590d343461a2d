package mongostore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestWrapRedactsKey(t *testing.T) {
	const key = "session:Zm9vYmFy"
	inner := errors.New(`E11000 duplicate key error dup key: { _id: "session:Zm9vYmFy" }`)
	err := wrap("save", key, inner)
	if strings.Contains(err.Error(), key) {
		t.Fatalf("error %q shows the key", err)
	}
	if want := `mongostore: save: E11000 duplicate key error dup key: { _id: "<key>" }`; err.Error() != want {
		t.Fatalf("error = %q; want %q", err, want)
	}
	if !errors.Is(err, inner) {
		t.Fatal("the redacted error does not wrap the original")
	}
	if err := wrap("load", "", context.Canceled); err.Error() != "mongostore: load: context canceled" || !errors.Is(err, context.Canceled) {
		t.Fatalf("wrap with an empty key = %q", err)
	}
}

func TestExpiryRoundsUp(t *testing.T) {
	now := bson.DateTime(1_000)
	for _, c := range []struct {
		ttl  time.Duration
		want bson.DateTime
	}{
		{time.Nanosecond, 1_001},
		{time.Millisecond, 1_001},
		{time.Millisecond + 1, 1_002},
		{time.Second, 2_000},
		{90*time.Second + 500*time.Microsecond, 91_001},
	} {
		if got := expiry(now, c.ttl); got != c.want {
			t.Errorf("expiry(%d, %v) = %d; want %d", now, c.ttl, got, c.want)
		}
	}
}

func TestNextVersion(t *testing.T) {
	for _, old := range []uint64{0, 1, 1 << 63, ^uint64(0)} {
		for range 1000 {
			if v := nextVersion(old); v == 0 || v == old {
				t.Fatalf("nextVersion(%d) = %d", old, v)
			}
		}
	}
}
