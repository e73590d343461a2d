package memcachedstore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memcachedstore"
)

// The tests in this file run against a scripted server on loopback, to
// reach the failures that a real memcached rarely produces.

// An answer is what the scripted server does with one request.
type answer struct {
	reply string // written as it is
	close bool   // close the connection after the reply
	hang  bool   // never reply; wait for the client to hang up
}

// A fakeServer accepts connections and answers each request as its
// script says.
type fakeServer struct {
	addr   string
	script func(line string) answer

	mu       sync.Mutex
	accepted int
	open     int
	maxOpen  int
	lines    []string
}

func startFake(t *testing.T, script func(line string) answer) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: ln.Addr().String(), script: script}
	var wg sync.WaitGroup
	var conns sync.Map
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			f.mu.Lock()
			f.accepted++
			f.open++
			f.maxOpen = max(f.maxOpen, f.open)
			f.mu.Unlock()
			wg.Go(func() {
				defer func() {
					f.mu.Lock()
					f.open--
					f.mu.Unlock()
					conns.Delete(c)
					_ = c.Close()
				}()
				f.serve(c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Range(func(c, _ any) bool { _ = c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return f
}

func (f *fakeServer) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		fields := strings.Fields(line)
		if len(fields) > 2 && fields[0] == "ms" {
			n, _ := strconv.Atoi(fields[2])
			if _, err := io.ReadFull(r, make([]byte, n+2)); err != nil {
				return
			}
		}
		f.mu.Lock()
		f.lines = append(f.lines, line)
		f.mu.Unlock()
		a := f.script(line)
		if a.hang {
			_, _ = io.Copy(io.Discard, r)
			return
		}
		if _, err := io.WriteString(c, a.reply); err != nil || a.close {
			return
		}
	}
}

func (f *fakeServer) stats() (accepted, open, maxOpen int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted, f.open, f.maxOpen
}

func reply(s string) func(string) answer {
	return func(string) answer { return answer{reply: s} }
}

func TestServerClosesIdleConnections(t *testing.T) {
	// The server hangs up after every reply, as a restarted one would have
	// done to idle connections. Each operation then finds its pooled
	// connection dead before any reply byte, and sends again on a new one.
	f := startFake(t, func(line string) answer {
		switch line[:2] {
		case "mg":
			return answer{reply: "EN\r\n", close: true}
		case "ms":
			return answer{reply: "HD c5\r\n", close: true}
		}
		return answer{reply: "NF\r\n", close: true}
	})
	s := memcachedstore.New(f.addr)
	defer s.Close()
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := s.Load(ctx, "k", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load %d = %v; want ErrNotFound", i, err)
		}
		time.Sleep(10 * time.Millisecond) // let the hang-up arrive
	}
	if v, err := s.Save(ctx, "k", []byte("x"), 0, time.Minute); err != nil || v != 5 {
		t.Fatalf("Save = %d, %v; want 5", v, err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if accepted, _, _ := f.stats(); accepted != 5 {
		t.Fatalf("%d connections for 5 operations", accepted)
	}
}

func TestNoRetryOnNewConnection(t *testing.T) {
	f := startFake(t, func(string) answer { return answer{close: true} })
	s := memcachedstore.New(f.addr)
	defer s.Close()
	_, _, err := s.Load(context.Background(), "k", 0)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Load = %v; want an error wrapping io.EOF", err)
	}
	if accepted, _, _ := f.stats(); accepted != 1 {
		t.Fatalf("%d connections; a new connection that fails must not be retried", accepted)
	}
}

func TestBadReplies(t *testing.T) {
	const secret = "session:SECRET-ID"
	type op func(s *memcachedstore.Store) error
	load := func(s *memcachedstore.Store) error {
		_, _, err := s.Load(context.Background(), secret, time.Minute)
		return err
	}
	save := func(version uint64) op {
		return func(s *memcachedstore.Store) error {
			_, err := s.Save(context.Background(), secret, []byte("x"), version, time.Minute)
			return err
		}
	}
	del := func(s *memcachedstore.Store) error { return s.Delete(context.Background(), secret) }
	// A reply that is well framed but not one the operation expects leaves
	// the connection usable (reuse); any other leaves it in an unknown
	// state, and it is closed.
	for _, tc := range []struct {
		name  string
		op    op
		reply string
		want  error  // nil: any error
		text  string // the error's text must contain it
		reuse bool
	}{
		{"unknown code", load, "XX\r\n", memcachedstore.ErrProtocol, "memcachedstore: load: protocol error", false},
		{"text protocol reply", load, "VALUE k 0 1\r\nx\r\nEND\r\n", memcachedstore.ErrProtocol, "", false},
		{"no CRLF", load, "EN\n", memcachedstore.ErrProtocol, "", false},
		{"value without CAS", load, "VA 1\r\nx\r\n", memcachedstore.ErrProtocol, "without a CAS", true},
		{"CAS disabled on load", load, "VA 1 c0\r\nx\r\n", memcachedstore.ErrCASDisabled, "-C", true},
		{"mg answered HD", load, "HD c1\r\n", memcachedstore.ErrProtocol, "mg answered HD", true},
		{"value too long", load, "VA 2000000 c1\r\n", memcachedstore.ErrCorrupt, "memcachedstore: load: corrupt entry: the item holds 2000000 bytes", false},
		{"value too long is corrupt", load, "VA 2000000 c1\r\n", store.ErrCorrupt, "", false},
		{"truncated value", load, "VA 5 c1\r\nab", io.ErrUnexpectedEOF, "", false},
		{"save without CAS", save(0), "HD\r\n", memcachedstore.ErrProtocol, "memcachedstore: save: protocol error", true},
		{"CAS disabled on save", save(0), "HD c0\r\n", memcachedstore.ErrCASDisabled, "", true},
		{"save returns the old CAS", save(7), "HD c7\r\n", memcachedstore.ErrProtocol, "", true},
		{"ms answered EN", save(7), "EN\r\n", memcachedstore.ErrProtocol, "ms answered EN", true},
		{"too large", save(7), "SERVER_ERROR object too large for cache\r\n", memcachedstore.ErrTooLarge, "object too large", false},
		{"out of memory", save(7), "SERVER_ERROR out of memory storing object\r\n", nil, "SERVER_ERROR: out of memory storing object", false},
		{"client error", save(0), "CLIENT_ERROR bad data chunk\r\n", nil, "CLIENT_ERROR: bad data chunk", false},
		{"error", del, "ERROR\r\n", nil, "memcachedstore: delete: server replied ERROR", false},
		{"md answered EX", del, "EX\r\n", memcachedstore.ErrProtocol, "md answered EX", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// After a truncated reply the server hangs up.
			truncated := tc.want == io.ErrUnexpectedEOF
			f := startFake(t, func(string) answer { return answer{reply: tc.reply, close: truncated} })
			s := memcachedstore.New(f.addr)
			defer s.Close()
			for range 2 {
				err := tc.op(s)
				if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
					t.Fatalf("got %v; want an error", err)
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("got %v; want %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "memcachedstore: ") {
					t.Errorf("got %q; want a memcachedstore error containing %q", err, tc.text)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error %q contains the key", err)
				}
			}
			want := 2
			if tc.reuse {
				want = 1
			}
			if accepted, _, _ := f.stats(); accepted != want {
				t.Errorf("%d connections for 2 requests; want %d", accepted, want)
			}
		})
	}
}

func TestContext(t *testing.T) {
	f := startFake(t, func(string) answer { return answer{hang: true} })
	s := memcachedstore.New(f.addr, memcachedstore.WithMaxConns(1))
	defer s.Close()

	t.Run("canceled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := s.Load(ctx, "k", 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Load = %v; want context.Canceled", err)
		}
		if accepted, _, _ := f.stats(); accepted != 0 {
			t.Fatalf("dialed %d times with a canceled context", accepted)
		}
	})
	t.Run("canceled during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := s.Save(ctx, "k", []byte("x"), 0, time.Minute)
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "memcachedstore: save: ") {
			t.Fatalf("Save = %v; want memcachedstore: save: context canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Save returned %v after the cancellation", d)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := s.Delete(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Delete = %v; want context.DeadlineExceeded", err)
		}
	})
	t.Run("waiting for a connection", func(t *testing.T) {
		busy, stop := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, _, err := s.Load(busy, "k", 0); done <- err }()
		time.Sleep(20 * time.Millisecond) // the only connection is taken
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, _, err := s.Load(ctx, "k", 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Load waiting for a connection = %v; want context.DeadlineExceeded", err)
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Load holding the connection = %v; want context.Canceled", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := memcachedstore.New(f.addr, memcachedstore.WithTimeout(50*time.Millisecond))
		defer s.Close()
		_, _, err := s.Load(context.Background(), "k", 0)
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Load = %v; want an i/o timeout", err)
		}
	})
}

func TestMaxConns(t *testing.T) {
	f := startFake(t, func(string) answer {
		time.Sleep(5 * time.Millisecond)
		return answer{reply: "EN\r\n"}
	})
	s := memcachedstore.New(f.addr, memcachedstore.WithMaxConns(3))
	defer s.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 5 {
				if _, _, err := s.Load(context.Background(), "k", 0); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Load = %v", err)
				}
			}
		})
	}
	wg.Wait()
	if accepted, _, maxOpen := f.stats(); maxOpen > 3 || accepted > 3 {
		t.Fatalf("%d connections, %d open at once; want at most 3", accepted, maxOpen)
	}
}

func TestClose(t *testing.T) {
	f := startFake(t, reply("NF\r\n"))
	s := memcachedstore.New(f.addr)
	if err := s.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, open, _ := f.stats(); open == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, open, _ := f.stats(); open != 0 {
		t.Fatalf("%d connections open after Close", open)
	}
	err := s.Delete(context.Background(), "k")
	if !errors.Is(err, memcachedstore.ErrClosed) || err.Error() != "memcachedstore: delete: store closed" {
		t.Fatalf("Delete after Close = %v; want memcachedstore: delete: store closed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	f := startFake(t, reply("HD c1\r\n"))
	s := memcachedstore.New(f.addr)
	defer s.Close()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(context.Background(), "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if accepted, _, _ := f.stats(); accepted != 0 {
		t.Fatalf("rejected Saves reached the server")
	}
}
