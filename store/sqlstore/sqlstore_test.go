package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// A backend is a database server to test against.
type backend struct {
	dialect sqlstore.Dialect
	// open returns a new pool of connections to the server. With proxy
	// set, the connections go through that address instead.
	open func(t *testing.T, proxy string) *sql.DB
	// addr is the server's host:port, for a proxy to forward to.
	addr string
	// expire makes every row of table expire a minute ago, with the
	// database's clock.
	expire string
}

// forEachBackend runs test, in parallel, against the PostgreSQL server
// named by GINSESSION_POSTGRES_URL and the MySQL or MariaDB server named by
// GINSESSION_MYSQL_DSN.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, postgres(t))
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		test(t, mysqlBackend(t, false))
	})
}

func postgres(t *testing.T) backend {
	url := storetest.ServerEnv(t, "GINSESSION_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("GINSESSION_POSTGRES_URL: %v", err)
	}
	return backend{
		dialect: sqlstore.Postgres,
		addr:    fmt.Sprintf("%s:%d", cfg.Host, cfg.Port),
		open: func(t *testing.T, proxy string) *sql.DB {
			if proxy == "" {
				db, err := sql.Open("pgx", url)
				if err != nil {
					t.Fatal(err)
				}
				return ping(t, db)
			}
			c := cfg.Copy()
			c.Fallbacks = nil
			host, port := splitHostPort(t, proxy)
			c.Host, c.Port = host, uint16(port)
			return ping(t, stdlib.OpenDB(*c))
		},
		expire: `UPDATE %s SET expires_at = now() - interval '1 minute'`,
	}
}

// mysqlBackend returns the MySQL backend; with interpolate, its
// connections set interpolateParams=true.
func mysqlBackend(t *testing.T, interpolate bool) backend {
	dsn := storetest.ServerEnv(t, "GINSESSION_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("GINSESSION_MYSQL_DSN: %v", err)
	}
	if interpolate {
		cfg.InterpolateParams = true
	}
	return backend{
		dialect: sqlstore.MySQL,
		addr:    cfg.Addr,
		open: func(t *testing.T, proxy string) *sql.DB {
			c := cfg.Clone()
			if proxy != "" {
				c.Net, c.Addr = "tcp", proxy
			}
			connector, err := mysql.NewConnector(c)
			if err != nil {
				t.Fatal(err)
			}
			return ping(t, sql.OpenDB(connector))
		},
		expire: `UPDATE %s SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE`,
	}
}

// ping closes db when the test ends, and fails the test at once with a
// clear message if the server is down.
func ping(t *testing.T, db *sql.DB) *sql.DB {
	t.Helper()
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("cannot reach the database server: %v", err)
	}
	return db
}

// newTable creates a table with a random name for this test, drops it
// when the test ends, and returns its name and a Store that uses it.
func newTable(t *testing.T, db *sql.DB, opts ...sqlstore.Option) (string, *sqlstore.Store) {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	table := "gstest_" + hex.EncodeToString(b)
	s, err := sqlstore.New(db, append(opts, sqlstore.WithTable(table))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP TABLE "+table); err != nil {
			t.Errorf("cleanup: drop table %s: %v", table, err)
		}
	})
	return table, s
}

func TestConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t, "")
		_, s := newTable(t, db) // the dialect comes from the driver
		if got := sqlstore.DialectOf(s); got != b.dialect {
			t.Fatalf("New detected %v from %T; want %v", got, db.Driver(), b.dialect)
		}
		storetest.Run(t, func(*testing.T) store.Store { return s })
	})
}

// TestConformanceInterpolateParams runs the suite once more on MySQL with
// the DSN setting that the README recommends, which sends payloads as
// escaped literals rather than as parameters of a prepared statement.
func TestConformanceInterpolateParams(t *testing.T) {
	t.Parallel()
	b := mysqlBackend(t, true)
	_, s := newTable(t, b.open(t, ""))
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestConcurrentIncrements has two connection pools, as two application
// servers would have, race compare-and-set increments of one counter.
func TestConcurrentIncrements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db1, db2 := b.open(t, ""), b.open(t, "")
		table, s1 := newTable(t, db1)
		s2, err := sqlstore.New(db2, sqlstore.WithTable(table))
		if err != nil {
			t.Fatal(err)
		}
		const goroutines, increments = 10, 5 // per pool
		ctx := context.Background()
		var wg sync.WaitGroup
		var conflicts atomic.Int64
		for i := range 2 * goroutines {
			s := []*sqlstore.Store{s1, s2}[i%2]
			wg.Go(func() {
				for range increments {
					n, err := storetest.Increment(ctx, s, "counter", time.Minute)
					conflicts.Add(int64(n))
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		t.Logf("%d increments met %d conflicts", 2*goroutines*increments, conflicts.Load())
		data, _, err := s1.Load(ctx, "counter", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(data), strconv.Itoa(2*goroutines*increments); got != want {
			t.Fatalf("counter = %s after %s increments", got, want)
		}
	})
}

func TestExpiredRowIsReplaced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t, "")
		table, s := newTable(t, db)
		ctx := context.Background()
		v1, err := s.Save(ctx, "k", []byte("old"), 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(b.expire, table)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Load(ctx, "k", time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("renewing Load of an expired row = %v; want ErrNotFound", err)
		}
		if _, err := s.Save(ctx, "k", []byte("late"), v1, time.Hour); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Save with the expired row's version = %v; want ErrConflict", err)
		}
		v2, err := s.Save(ctx, "k", []byte("new"), 0, time.Hour)
		if err != nil {
			t.Fatalf("Save(version 0) over an expired row: %v", err)
		}
		data, v, err := s.Load(ctx, "k", 0)
		if err != nil || string(data) != "new" || v != v2 || v2 == v1 {
			t.Fatalf("Load = %q, %d, %v; want %q, %d (not %d)", data, v, err, "new", v2, v1)
		}
		if _, err := s.Save(ctx, "k", []byte("again"), 0, time.Hour); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Save(version 0) over a live row = %v; want ErrConflict", err)
		}
	})
}

func TestDeleteExpired(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t, "")
		table, s := newTable(t, db)
		sqlstore.SetDeleteBatch(s, 4)
		ctx := context.Background()
		const expired, live = 10, 3
		for i := range expired {
			if _, err := s.Save(ctx, fmt.Sprint("expired-", i), []byte("x"), 0, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(b.expire, table)); err != nil {
			t.Fatal(err)
		}
		for i := range live {
			if _, err := s.Save(ctx, fmt.Sprint("live-", i), []byte("x"), 0, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteExpired(ctx)
		if err != nil || n != expired {
			t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, expired)
		}
		var rows int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != live {
			t.Fatalf("%d rows left; want the %d live ones", rows, live)
		}
		if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
			t.Fatalf("second DeleteExpired = %d, %v; want 0", n, err)
		}
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.DeleteExpired(canceled); !errors.Is(err, context.Canceled) {
			t.Fatalf("DeleteExpired with a canceled context = %v; want context.Canceled", err)
		}
	})
}

// TestCorruptRow checks that a row with version 0, which this package
// never writes, gives ErrCorrupt on Load, counts as a conflict on Save,
// and can be deleted.
func TestCorruptRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t, "")
		table, s := newTable(t, db)
		ctx := context.Background()
		if _, err := s.Save(ctx, "k", []byte("x"), 0, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET version = 0"); err != nil {
			t.Fatal(err)
		}
		for _, ttl := range []time.Duration{0, time.Minute} {
			if data, v, err := s.Load(ctx, "k", ttl); !errors.Is(err, sqlstore.ErrCorrupt) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("Load(ttl %v) = %q, %d, %v; want ErrCorrupt", ttl, data, v, err)
			}
		}
		for _, version := range []uint64{0, 1} {
			if _, err := s.Save(ctx, "k", []byte("y"), version, time.Minute); !errors.Is(err, store.ErrConflict) {
				t.Errorf("Save(version %d) = %v; want ErrConflict", version, err)
			}
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Load(ctx, "k", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load after Delete = %v; want ErrNotFound", err)
		}
	})
}

// TestKeys checks that keys are compared byte for byte: not folded in case,
// not trimmed, not truncated, and free to hold any byte.
func TestKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		_, s := newTable(t, b.open(t, ""))
		ctx := context.Background()
		keys := []string{"session:abc", "session:ABC", "session:abc ", "session:ab\x00c", "session:\xff\xfe", strings.Repeat("k", 255)}
		versions := map[string]uint64{}
		for _, k := range keys {
			v, err := s.Save(ctx, k, []byte(k), 0, time.Hour)
			if err != nil {
				t.Fatalf("Save(%q): %v", k, err)
			}
			versions[k] = v
		}
		for _, k := range keys {
			data, v, err := s.Load(ctx, k, 0)
			if err != nil || string(data) != k || v != versions[k] {
				t.Errorf("Load(%q) = %q, %d, %v; want its own payload and version", k, data, v, err)
			}
		}
		long := strings.Repeat("k", 256)
		_, err := s.Save(ctx, long, []byte("x"), 0, time.Hour)
		switch b.dialect {
		case sqlstore.MySQL:
			if err == nil || errors.Is(err, store.ErrConflict) {
				t.Fatalf("Save of a 256-byte key on MySQL = %v; want an error", err)
			}
			if strings.Contains(err.Error(), long) {
				t.Fatalf("the error contains the key: %v", err)
			}
		default:
			if err != nil {
				t.Fatalf("Save of a 256-byte key: %v", err)
			}
		}
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	pgDB, err := sql.Open("pgx", "postgres://nowhere.invalid/db")
	if err != nil {
		t.Fatal(err)
	}
	defer pgDB.Close()
	myDB, err := sql.Open("mysql", "user@tcp(nowhere.invalid:3306)/db")
	if err != nil {
		t.Fatal(err)
	}
	defer myDB.Close()
	for db, want := range map[*sql.DB]sqlstore.Dialect{pgDB: sqlstore.Postgres, myDB: sqlstore.MySQL} {
		s, err := sqlstore.New(db)
		if err != nil {
			t.Fatalf("New with driver %T: %v", db.Driver(), err)
		}
		if got := sqlstore.DialectOf(s); got != want {
			t.Errorf("New with driver %T detected %v; want %v", db.Driver(), got, want)
		}
		s, err = sqlstore.New(db, sqlstore.WithDialect(sqlstore.MySQL))
		if err != nil || sqlstore.DialectOf(s) != sqlstore.MySQL {
			t.Errorf("WithDialect(MySQL) on driver %T = %v, %v", db.Driver(), s, err)
		}
	}

	other := sql.OpenDB(fakeConnector{})
	defer other.Close()
	if _, err := sqlstore.New(other); err == nil || !strings.Contains(err.Error(), "WithDialect") {
		t.Errorf("New with an unknown driver = %v; want an error that suggests WithDialect", err)
	}
	if _, err := sqlstore.New(other, sqlstore.WithDialect(sqlstore.Postgres)); err != nil {
		t.Errorf("New with an unknown driver and WithDialect: %v", err)
	}
	if _, err := sqlstore.New(other, sqlstore.WithDialect(7)); err == nil {
		t.Error("New accepted Dialect(7)")
	}
	if _, err := sqlstore.New(nil); err == nil {
		t.Error("New accepted a nil *sql.DB")
	}
	for _, name := range []string{"sessions", "_s", "Sessions2", "order", strings.Repeat("t", 48)} {
		if _, err := sqlstore.New(pgDB, sqlstore.WithTable(name)); err != nil {
			t.Errorf("WithTable(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "1sessions", "my-sessions", "public.sessions", `s"; DROP TABLE x; --`, "s`", "séances", strings.Repeat("t", 49)} {
		if _, err := sqlstore.New(pgDB, sqlstore.WithTable(name)); err == nil {
			t.Errorf("WithTable(%q) was accepted", name)
		}
	}
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		_, s := newTable(t, b.open(t, ""))
		ctx := context.Background()
		for _, ttl := range []time.Duration{0, -time.Second} {
			if _, err := s.Save(ctx, "k", []byte("x"), 0, ttl); err == nil {
				t.Errorf("Save with ttl %v succeeded", ttl)
			}
		}
		if _, _, err := s.Load(ctx, "k", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load after rejected Saves = %v; want ErrNotFound", err)
		}
	})
}

func TestCreateTableTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		_, s := newTable(t, b.open(t, ""))
		ctx := context.Background()
		v, err := s.Save(ctx, "k", []byte("x"), 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTable(ctx); err != nil {
			t.Fatalf("CreateTable on an existing table: %v", err)
		}
		if data, lv, err := s.Load(ctx, "k", 0); err != nil || string(data) != "x" || lv != v {
			t.Fatalf("after a second CreateTable, Load = %q, %d, %v", data, lv, err)
		}
	})
}
