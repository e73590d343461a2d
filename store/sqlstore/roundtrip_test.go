package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/sqlstore/internal/sqltest"
)

// A turnProxy forwards TCP connections to a database server and counts
// round trips: the times the server answers after the client has sent.
// A request that gets no answer (MySQL's COM_STMT_CLOSE) costs no round
// trip of its own: it travels with the next request. The proxy notes each
// answer before it forwards it, so an operation's answers are all counted
// by the time it returns.
type turnProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	asked bool // the client has sent since the server last did
	turns int
	conns []net.Conn
}

func newTurnProxy(t *testing.T, target string) *turnProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &turnProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *turnProxy) addr() string { return p.ln.Addr().String() }

func (p *turnProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.pipe(client, server, true)
		go p.pipe(server, client, false)
	}
}

// pipe copies from src to dst, noting who spoke before it forwards.
func (p *turnProxy) pipe(src, dst net.Conn, fromClient bool) {
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if !fromClient && p.asked {
				p.turns++
			}
			p.asked = fromClient
			p.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}

// take returns the round trips counted since the last call.
func (p *turnProxy) take() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.turns
	p.turns = 0
	return n
}

func (p *turnProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestRoundTrips counts the network round trips of each operation, through
// a proxy, on one connection that has run every statement before, so that
// the driver's caches are warm and no handshake counts.
func TestRoundTrips(t *testing.T) {
	type expected struct {
		loadMissing, saveNew, loadRenew, load, saveExisting, saveStale, saveOverExpired, saveTaken, delete int
	}
	run := func(t *testing.T, b sqltest.Backend, want expected) {
		proxy := newTurnProxy(t, b.Addr)
		db := b.Open(t, proxy.addr())
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		direct := b.Open(t, "")
		table, s := sqltest.NewTable(t, direct, sqlstore.WithDialect(b.Dialect))
		s, err := sqlstore.New(db, sqlstore.WithTable(table), sqlstore.WithDialect(b.Dialect))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		expire := func(key string) {
			t.Helper()
			if _, err := direct.ExecContext(ctx, fmt.Sprintf(b.Expire, table)+" WHERE session_key = "+placeholder(b.Dialect), []byte(key)); err != nil {
				t.Fatal(err)
			}
		}
		var version uint64
		steps := []struct {
			name string
			want int
			run  func(key string) error
		}{
			{"Load of a missing key", want.loadMissing, func(key string) error {
				_, _, err := s.Load(ctx, key, time.Minute)
				return expect(err, store.ErrNotFound)
			}},
			{"Save of a new session", want.saveNew, func(key string) (err error) {
				version, err = s.Save(ctx, key, []byte("one"), 0, time.Minute)
				return err
			}},
			{"Load renewing the expiry", want.loadRenew, func(key string) error {
				_, _, err := s.Load(ctx, key, time.Minute)
				return err
			}},
			{"Load keeping the expiry", want.load, func(key string) error {
				_, _, err := s.Load(ctx, key, 0)
				return err
			}},
			{"Save of an existing session", want.saveExisting, func(key string) (err error) {
				version, err = s.Save(ctx, key, []byte("two"), version, time.Minute)
				return err
			}},
			{"Save with a stale version", want.saveStale, func(key string) error {
				_, err := s.Save(ctx, key, []byte("stale"), ^version, time.Minute)
				return expect(err, store.ErrConflict)
			}},
			{"Save of a new session over an expired one", want.saveOverExpired, func(key string) (err error) {
				expire(key) // on another connection
				version, err = s.Save(ctx, key, []byte("three"), 0, time.Minute)
				return err
			}},
			{"Save of a new session whose key is taken", want.saveTaken, func(key string) error {
				_, err := s.Save(ctx, key, []byte("taken"), 0, time.Minute)
				return expect(err, store.ErrConflict)
			}},
			{"Delete", want.delete, func(key string) error {
				return s.Delete(ctx, key)
			}},
		}
		// Round one warms up the connection and the driver's statement
		// cache; round two counts.
		for round := range 2 {
			key := "session-" + strconv.Itoa(round)
			for _, step := range steps {
				proxy.take()
				if err := step.run(key); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				if got := proxy.take(); round == 1 && got != step.want {
					t.Errorf("%s took %d round trips; want %d", step.name, got, step.want)
				}
			}
		}
	}
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		run(t, postgres(t), expected{1, 1, 1, 1, 1, 1, 1, 1, 1})
	})
	t.Run("mysql-interpolateParams", func(t *testing.T) {
		t.Parallel()
		run(t, mysqlBackend(t, true), expected{1, 1, 2, 1, 1, 1, 2, 2, 1})
	})
	// go-sql-driver/mysql's default: each statement with arguments is a
	// server-side prepare and an execute.
	t.Run("mysql-prepared", func(t *testing.T) {
		t.Parallel()
		run(t, mysqlBackend(t, false), expected{2, 2, 4, 2, 2, 2, 4, 4, 2})
	})
}

func expect(err, want error) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("got %v; want %v", err, want)
	}
	return nil
}

func placeholder(d sqlstore.Dialect) string {
	if d == sqlstore.Postgres {
		return "$1"
	}
	return "?"
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, n
}
