// Package sqltest holds the tests that package sqlstore runs against every
// kind of database it supports.
//
// They live here, not in package sqlstore's test files, so that the tests
// on SQLite can run from package sqlitedb's. A test file of package
// sqlstore that imported a SQLite driver would make go mod tidy, which
// loads the tests of the packages a program imports, download that driver
// (some 40 MB of source) for every program that uses sqlstore with
// PostgreSQL or MySQL.
package sqltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store/sqlstore"
)

// A Backend is a database to test against.
type Backend struct {
	Dialect sqlstore.Dialect
	// Open returns a new pool of connections to the database, closed when
	// the test ends. With proxy set, the connections go through that
	// address instead.
	Open func(t *testing.T, proxy string) *sql.DB
	// Addr is the server's host:port, for a proxy to forward to; empty
	// for SQLite.
	Addr string
	// Expire is a statement that makes every row of the table named by
	// its %s expire a minute ago, by the database's clock.
	Expire string
	// Hooks reach into a Store. Only package sqlstore's own tests have
	// them; a test that needs one skips the check without it.
	Hooks Hooks
}

// Hooks reach into a Store's unexported state.
type Hooks struct {
	// DialectOf returns the dialect s speaks.
	DialectOf func(s *sqlstore.Store) sqlstore.Dialect
	// SetDeleteBatch sets how many rows one statement of DeleteExpired
	// deletes.
	SetDeleteBatch func(s *sqlstore.Store, n int)
	// SweepDone returns the channel that is closed when the sweep of s
	// has stopped, or nil if s has no sweep.
	SweepDone func(s *sqlstore.Store) <-chan struct{}
}

// A Test is one test of a Backend.
type Test struct {
	Name string
	Run  func(t *testing.T, b Backend)
}

// Tests are the tests that every Backend must pass. Each may run in
// parallel with the others.
var Tests = []Test{
	{"Conformance", Conformance},
	{"ConcurrentIncrements", ConcurrentIncrements},
	{"ExpiredRowIsReplaced", ExpiredRowIsReplaced},
	{"DeleteExpired", DeleteExpired},
	{"CorruptRow", CorruptRow},
	{"Keys", Keys},
	{"SaveRejectsNonPositiveTTL", SaveRejectsNonPositiveTTL},
	{"CreateTableTwice", CreateTableTwice},
	{"Sweep", Sweep},
	{"NoSweepByDefault", NoSweepByDefault},
	{"SweepReportsErrors", SweepReportsErrors},
}

// Ping closes db when the test ends, and fails the test at once with a
// clear message if the database cannot be reached.
func Ping(t *testing.T, db *sql.DB) *sql.DB {
	t.Helper()
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("cannot reach the database: %v", err)
	}
	return db
}

// NewTable creates a table with a random name for this test, drops it
// when the test ends, and returns its name and a Store that uses it.
func NewTable(t *testing.T, db *sql.DB, opts ...sqlstore.Option) (string, *sqlstore.Store) {
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

// RowCount returns how many rows of table have a key starting with
// prefix.
func RowCount(t *testing.T, db *sql.DB, table, prefix string) int {
	t.Helper()
	// Keys are binary; comparing bytes in Go works the same for every
	// database, unlike LIKE on a binary column.
	rows, err := db.Query("SELECT session_key FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(k, []byte(prefix)) {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// A SweepLog collects what a sweep reports; its Report method is for
// sqlstore.WithSweepReport.
type SweepLog struct {
	mu      sync.Mutex
	passes  int
	deleted int64
	errs    []error
}

// Report records one pass.
func (l *SweepLog) Report(n int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.passes++
	l.deleted += n
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

// Get returns the passes reported so far, the rows they deleted, and
// their errors.
func (l *SweepLog) Get() (passes int, deleted int64, errs []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.passes, l.deleted, append([]error(nil), l.errs...)
}

// checkStopped fails the test unless the sweep of s has stopped, if the
// backend has the hook to tell.
func checkStopped(t *testing.T, b Backend, s *sqlstore.Store) {
	t.Helper()
	if b.Hooks.SweepDone == nil {
		return
	}
	done := b.Hooks.SweepDone(s)
	if done == nil {
		t.Fatal("the Store has no sweep")
	}
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the sweep's goroutine exited")
	}
}
