package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
)

// reloadCounter is a client with a ReloadState method, as
// *redis.ClusterClient has, that counts its calls.
type reloadCounter struct {
	*redis.Client
	reloads atomic.Int32
}

func (c *reloadCounter) ReloadState(context.Context) { c.reloads.Add(1) }

func TestTopologyError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("redisstore: load: %w", io.EOF), true},
		{context.DeadlineExceeded, true},
		{redis.ErrPoolTimeout, true},
		{context.Canceled, false},
		{redis.ErrClosed, false},
		{redis.Nil, false},
	} {
		if got := topologyError(tc.err); got != tc.want {
			t.Errorf("topologyError(%v) = %t; want %t", tc.err, got, tc.want)
		}
	}
}

// TestReloadOnErrors checks that a Store whose client can reload a
// Cluster's slot map has it do so after a connection error, at most once
// per reloadInterval, and not after Redis's own answers.
func TestReloadOnErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close() // nothing listens there now
		c := &reloadCounter{Client: redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})}
		t.Cleanup(func() { _ = c.Close() })
		s := New(c)
		start := time.Now()
		for range 5 {
			if _, _, err := s.Load(ctx, "k", 0); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Load with nothing listening = %v", err)
			}
		}
		if _, err := s.Save(ctx, "k", []byte("x"), 1, time.Minute); err == nil {
			t.Fatal("Save with nothing listening succeeded")
		}
		want := int32(1)
		if time.Since(start) >= reloadInterval {
			want = 2 // a slow machine; the limit still holds
		}
		if n := c.reloads.Load(); n < 1 || n > want {
			t.Fatalf("%d reloads after 6 failed commands in %v; want 1 to %d", n, time.Since(start), want)
		}
		time.Sleep(reloadInterval)
		before := c.reloads.Load()
		if err := s.Delete(ctx, "k"); err == nil {
			t.Fatal("Delete with nothing listening succeeded")
		}
		if n := c.reloads.Load(); n != before+1 {
			t.Fatalf("%d reloads after a failed Delete %v later; want %d", n, reloadInterval, before+1)
		}
	})
	t.Run("answers", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := &reloadCounter{Client: redis.NewClient(&redis.Options{Addr: mr.Addr()})}
		t.Cleanup(func() { _ = c.Close() })
		s := New(c)
		if _, _, err := s.Load(ctx, "missing", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err := c.RPush(ctx, "list", "a").Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Load(ctx, "list", 0); !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "list", []byte("x"), 0, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, "list", []byte("x"), 1, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
		if n := c.reloads.Load(); n != 0 {
			t.Fatalf("%d reloads after Redis's answers; want 0", n)
		}
	})
}
