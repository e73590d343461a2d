package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// benchStore returns a Store on the Redis named by GINSESSION_REDIS_URL,
// with a key prefix of its own that is deleted when b ends.
func benchStore(b *testing.B) (*redisstore.Store, redis.UniversalClient, string) {
	b.Helper()
	opts, err := redis.ParseURL(storetest.ServerEnv(b, "GINSESSION_REDIS_URL", "redis://127.0.0.1:6379/9"))
	if err != nil {
		b.Fatalf("GINSESSION_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	b.Cleanup(func() { _ = client.Close() })
	ping(b, client)
	prefix := testPrefix(b)
	b.Cleanup(func() { _ = client.Del(context.Background(), prefix+"bench").Err() })
	return redisstore.New(client, redisstore.WithPrefix(prefix)), client, prefix
}

// payload is the size of a small session: a user ID, a few cart items.
var payload = make([]byte, 200)

// BenchmarkSave measures the compare-and-set of an existing session, the
// write of every request that changes one.
func BenchmarkSave(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := context.Background()
	v, err := s.Save(ctx, "bench", payload, 0, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v, err = s.Save(ctx, "bench", payload, v, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSaveNew measures the first write of a session (SET NX).
func BenchmarkSaveNew(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Save(ctx, "bench", payload, 0, time.Minute); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkLoad measures the read of a session with a rolling expiry
// (GETEX).
func BenchmarkLoad(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := context.Background()
	if _, err := s.Save(ctx, "bench", payload, 0, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Load(ctx, "bench", time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
