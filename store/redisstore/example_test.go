package redisstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store/redisstore"
)

func Example() {
	// miniredis stands in for a Redis server here.
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer client.Close()

	s := redisstore.New(client, redisstore.WithPrefix("shop:session:"))
	ctx := context.Background()

	v, _ := s.Save(ctx, "abc", []byte("cart=3"), 0, 30*time.Minute) // SET ... NX PX 1800000
	raw, _ := client.Get(ctx, "shop:session:abc").Bytes()
	fmt.Printf("stored: version %t, payload %q\n", binary.BigEndian.Uint64(raw[:8]) == v, raw[8:])

	data, _, _ := s.Load(ctx, "abc", 30*time.Minute) // GETEX ... PX 1800000
	fmt.Printf("loaded: %s\n", data)
	// Output:
	// stored: version true, payload "cart=3"
	// loaded: cart=3
}

func ExampleNew_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
	})
	defer client.Close()
	s := redisstore.New(client)
	_ = s // hand s to ginsession
}

func ExampleNew_sentinel() {
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    "sessions",
		SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
	})
	defer client.Close()
	s := redisstore.New(client, redisstore.WithPrefix("myapp:session:"))
	_ = s // hand s to ginsession
}
