package ginsession

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// TestForeignRedisValues puts a value of every Redis type, none written by
// ginsession, under a session key, and checks that a request with that
// cookie gets 200 and a fresh session (never a 503 that would lock the
// user out), that the key is left exactly as it was, and that ErrCorrupt
// reaches c.Errors. On miniredis and on the real Redis.
func TestForeignRedisValues(t *testing.T) {
	t.Parallel()
	clients := map[string]func(t *testing.T) *redis.Client{
		"miniredis": func(t *testing.T) *redis.Client {
			return redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		},
		"redis": func(t *testing.T) *redis.Client {
			opt, err := redis.ParseURL(storetest.ServerEnv(t, "GINSESSION_REDIS_URL", "redis://127.0.0.1:6379/9"))
			if err != nil {
				t.Fatal(err)
			}
			return redis.NewClient(opt)
		},
	}
	values := map[string]func(ctx context.Context, rdb *redis.Client, key string) error{
		"short string": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.Set(ctx, key, "short", 0).Err()
		},
		"version 0": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.Set(ctx, key, "\x00\x00\x00\x00\x00\x00\x00\x00payload", 0).Err()
		},
		"foreign payload": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.Set(ctx, key, "\x00\x00\x00\x00\x00\x00\x00\x01{\"user\":1}", 0).Err()
		},
		"list": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.RPush(ctx, key, "a", "b").Err()
		},
		"hash": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.HSet(ctx, key, "user", "1").Err()
		},
		"set": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.SAdd(ctx, key, "a").Err()
		},
		"zset": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.ZAdd(ctx, key, redis.Z{Score: 1, Member: "a"}).Err()
		},
		"stream": func(ctx context.Context, rdb *redis.Client, key string) error {
			return rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"f", "v"}}).Err()
		},
	}
	for cname, client := range clients {
		t.Run(cname, func(t *testing.T) {
			t.Parallel()
			rdb := client(t)
			t.Cleanup(func() { rdb.Close() })
			for vname, put := range values {
				t.Run(vname, func(t *testing.T) {
					ctx := context.Background()
					a := newApp(t, Options{Store: redisstore.New(rdb)})
					id := newID()
					key := a.cfg.prefix + id
					if err := put(ctx, rdb, key); err != nil {
						t.Fatal(err)
					}
					dump := func() string {
						typ, err := rdb.Type(ctx, key).Result()
						if err != nil || typ == "none" {
							t.Fatalf("the foreign key is gone: %q, %v", typ, err)
						}
						var v any
						switch typ {
						case "string":
							v, err = rdb.Get(ctx, key).Result()
						case "list":
							v, err = rdb.LRange(ctx, key, 0, -1).Result()
						case "hash":
							v, err = rdb.HGetAll(ctx, key).Result()
						case "set":
							v, err = rdb.SMembers(ctx, key).Result()
						case "zset":
							v, err = rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
						case "stream":
							v, err = rdb.XRange(ctx, key, "-", "+").Result()
						}
						if err != nil {
							t.Fatal(err)
						}
						return fmt.Sprint(typ, v)
					}
					before := dump()
					br := newBrowser(t, a)
					br.setCookie(id)
					for range 2 { // the same answer each time: the user is never locked out
						wantBody(t, br.do("GET", "/get"), 200, " false")
					}
					if errs := a.drainErrs(); len(errs) == 0 || !errors.Is(errs[0], ErrCorrupt) {
						t.Fatalf("errors %v, want ErrCorrupt", errs)
					}
					wantBody(t, br.do("POST", "/set?v=fresh"), 200, "ok")
					if br.cookie() == id {
						t.Fatal("the foreign key's ID was adopted")
					}
					wantBody(t, br.do("GET", "/get"), 200, "fresh true")
					if dump() != before {
						t.Fatal("the foreign value changed")
					}
					// GETEX renews a foreign string's TTL before the store can
					// see that it is foreign; Redis refuses other types first
					// (miniredis renews them anyway).
					if ttl := rdb.TTL(ctx, key).Val(); ttl >= 0 && rdb.Type(ctx, key).Val() != "string" && cname == "redis" {
						t.Fatalf("the foreign %s got a TTL %v", vname, ttl)
					}
				})
			}
		})
	}
}
