package memcachedstore_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memcachedstore"
)

func Example() {
	sessions := memcachedstore.New("127.0.0.1:11211") // connects on first use
	defer sessions.Close()

	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{Store: sessions}))
	r.GET("/visits", func(c *gin.Context) {
		// One mg (value, CAS and a renewed expiry), then one ms with the CAS.
		n, _ := ginsession.Get[int](c, "visits")
		_ = ginsession.Set(c, "visits", n+1)
		c.JSON(http.StatusOK, gin.H{"visits": n + 1})
	})
	_ = r.Run("127.0.0.1:8080")
}

func ExampleWithDialer() {
	// memcached behind TLS (memcached -Z), with a tls.Dialer.
	d := &tls.Dialer{Config: &tls.Config{ServerName: "cache.internal"}}
	sessions := memcachedstore.New("cache.internal:11211", memcachedstore.WithDialer(d.DialContext))
	defer sessions.Close()

	// memcached on a Unix socket (memcached -s): the address is ignored.
	local := memcachedstore.New("unix", memcachedstore.WithDialer(
		func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", "/run/memcached/memcached.sock")
		}))
	defer local.Close()
}

func ExampleNewServers() {
	// Every process lists the same servers, in any order. Each session
	// lives on one of them; if one fails, only its sessions are lost.
	sessions, err := memcachedstore.NewServers([]string{
		"cache-1.internal:11211",
		"cache-2.internal:11211",
		"cache-3.internal:11211",
	}, memcachedstore.WithMaxConns(8)) // 8 connections to each server
	if err != nil {
		panic(err)
	}
	defer sessions.Close()

	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{Store: sessions}))
}
