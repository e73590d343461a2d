package sqlitedb_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/sqlstore/internal/sqltest"
	"github.com/ginsession/ginsession/store/sqlstore/sqlitedb"
	"github.com/ginsession/ginsession/store/storetest"
)

// sqliteBackend returns a backend whose connection pools all open one
// SQLite file in a directory of the test's own, as the processes of an
// application on one machine would.
func sqliteBackend(t *testing.T) sqltest.Backend {
	path := filepath.Join(t.TempDir(), "sessions.db")
	return sqltest.Backend{
		Dialect: sqlstore.SQLite,
		Open: func(t *testing.T, proxy string) *sql.DB {
			if proxy != "" {
				t.Fatal("SQLite is not reached over the network")
			}
			db, err := sqlitedb.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return sqltest.Ping(t, db)
		},
		Expire: `UPDATE %s SET expires_at = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) - 60000000`,
	}
}

// helperEnv, when set, makes the test binary a helper process of
// TestSQLiteProcesses instead of running tests; see incrementProcess.
const helperEnv = "SQLSTORE_TEST_INCREMENT_PROCESS"

func TestMain(m *testing.M) {
	if arg := os.Getenv(helperEnv); arg != "" {
		if err := incrementProcess(arg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSQLStore runs sqlstore's tests on SQLite, as package sqlstore runs
// them on PostgreSQL and MySQL. The Store is told the dialect by New from
// the driver that Open uses.
func TestSQLStore(t *testing.T) {
	t.Parallel()
	for _, test := range sqltest.Tests {
		t.Run(test.Name, func(t *testing.T) {
			t.Parallel()
			test.Run(t, sqliteBackend(t))
		})
	}
}

// Work of each helper process of TestSQLiteProcesses.
const (
	processGoroutines = 4
	processIncrements = 5 // per goroutine
)

// incrementProcess increments the counter "counter" in the table named in
// arg ("table path") of the SQLite file at path, from goroutines of its
// own sharing one connection pool, as an application process would.
func incrementProcess(arg string) error {
	var table, path string
	if _, err := fmt.Sscan(arg, &table, &path); err != nil {
		return fmt.Errorf("%s=%q: %w", helperEnv, arg, err)
	}
	db, err := sqlitedb.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := sqlstore.New(db, sqlstore.WithTable(table))
	if err != nil {
		return err
	}
	errs := make(chan error, processGoroutines)
	var wg sync.WaitGroup
	for range processGoroutines {
		wg.Go(func() {
			for range processIncrements {
				if _, err := storetest.Increment(context.Background(), s, "counter", time.Minute); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil if there was none
}

// TestSQLiteProcesses has several processes, each with its own connection
// pool, increment one counter in one SQLite file at the same time. SQLite
// serializes their writes through locks on the file, which a pool within
// one process takes no differently, but this is what the README promises.
func TestSQLiteProcesses(t *testing.T) {
	t.Parallel()
	const processes = 4
	path := filepath.Join(t.TempDir(), "sessions.db")
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	table, s := sqltest.NewTable(t, sqltest.Ping(t, db))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range processes {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+table+" "+path)
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("process %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	data, _, err := s.Load(ctx, "counter", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), strconv.Itoa(processes*processGoroutines*processIncrements); got != want {
		t.Fatalf("counter = %s after %s increments in %d processes", got, want, processes)
	}
}

// TestSQLiteRollbackJournal runs the conformance suite on a SQLite file in
// the rollback-journal mode, SQLite's default, rather than in the WAL mode
// that sqlitedb sets: compare-and-set must not depend on it.
func TestSQLiteRollbackJournal(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "journal.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(DELETE)")
	if err != nil {
		t.Fatal(err)
	}
	sqltest.Ping(t, db)
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("journal_mode = %q, %v; want delete", mode, err)
	}
	_, s := sqltest.NewTable(t, db)
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestCreateTableNeedsBusyTimeout checks that CreateTable refuses a SQLite
// connection that would fail at once when another one writes, and creates
// nothing.
func TestCreateTableNeedsBusyTimeout(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "no-timeout.db"))
	if err != nil {
		t.Fatal(err)
	}
	sqltest.Ping(t, db)
	s, err := sqlstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); !errors.Is(err, sqlstore.ErrNoBusyTimeout) {
		t.Fatalf("CreateTable without busy_timeout = %v; want ErrNoBusyTimeout", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the database holds %d objects (%v); want none", n, err)
	}
}

// TestSQLiteExpiresAt checks what expires_at holds on SQLite, for tools
// that read the table: microseconds since the Unix epoch, UTC.
func TestSQLiteExpiresAt(t *testing.T) {
	t.Parallel()
	db := sqliteBackend(t).Open(t, "")
	table, s := sqltest.NewTable(t, db)
	ctx := context.Background()
	for _, ttl := range []time.Duration{time.Hour, 90 * time.Second, 1500 * time.Microsecond} {
		before := time.Now()
		if _, err := s.Save(ctx, "k", []byte("x"), 0, ttl); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		var us int64
		if err := db.QueryRow(`SELECT expires_at FROM `+table+` WHERE session_key = ?`, []byte("k")).Scan(&us); err != nil {
			t.Fatal(err)
		}
		// SQLite's clock has millisecond resolution.
		lo, hi := before.Add(ttl-time.Millisecond), after.Add(ttl+time.Millisecond)
		if got := time.UnixMicro(us); got.Before(lo) || got.After(hi) {
			t.Errorf("Save with ttl %v stored expires_at %d (%v); want between %v and %v", ttl, us, got.UTC(), lo.UTC(), hi.UTC())
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeleteExpiredInBatches has DeleteExpired delete more expired rows
// than one statement deletes (1000), so that it takes three.
func TestDeleteExpiredInBatches(t *testing.T) {
	t.Parallel()
	db := sqliteBackend(t).Open(t, "")
	table, s := sqltest.NewTable(t, db)
	ctx := context.Background()
	const expired, live = 2500, 3
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO `+table+` (session_key, data, version, expires_at) SELECT CAST('expired-' || i AS BLOB), x'00', i, 0 FROM n`, expired); err != nil {
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
	if rows := sqltest.RowCount(t, db, table, ""); rows != live {
		t.Fatalf("%d rows left; want the %d live ones", rows, live)
	}
}

// sweepers returns how many goroutines are running a Store's sweep.
func sweepers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "ginsession/store.StartSweeper.func")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestCloseStopsTheSweep checks that New starts one goroutine for the
// sweep, and that Close waits for a pass under way and ends the goroutine.
// It is not parallel, so that no other test's sweep runs meanwhile.
func TestCloseStopsTheSweep(t *testing.T) {
	db := sqliteBackend(t).Open(t, "")
	_, plain := sqltest.NewTable(t, db)
	// A sweep that an earlier test closed may take an instant to end.
	waitForNoSweep := func(when string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for sweepers() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d sweeps still run a second %s", sweepers(), when)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitForNoSweep("before the test starts one")
	table, _ := sqltest.NewTable(t, db)
	// Each pass reports slowly, so that Close finds one under way.
	var inReport atomic.Bool
	var reports atomic.Int64
	report := func(int64, error) {
		inReport.Store(true)
		time.Sleep(20 * time.Millisecond)
		inReport.Store(false)
		reports.Add(1)
	}
	s, err := sqlstore.New(db, sqlstore.WithTable(table), sqlstore.WithSweepInterval(time.Millisecond), sqlstore.WithSweepReport(report))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); reports.Load() == 0; { // a pass has run
		if time.Now().After(deadline) {
			t.Fatal("no pass reported in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if n := sweepers(); n != 1 {
		t.Fatalf("%d sweeps run after New; want 1", n)
	}
	var wg sync.WaitGroup
	for range 3 { // concurrent Closes all wait
		wg.Go(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if inReport.Load() {
				t.Error("Close returned while a pass was under way")
			}
		})
	}
	wg.Wait()
	after := reports.Load()
	// The goroutine has closed the channel Close waits for; it is gone
	// an instant later.
	waitForNoSweep("after Close")
	time.Sleep(50 * time.Millisecond)
	if n := reports.Load(); n != after {
		t.Errorf("%d passes reported after Close", n-after)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := plain.Close(); err != nil {
		t.Errorf("Close of a Store without a sweep: %v", err)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("Close closed the *sql.DB: %v", err)
	}
}

// TestSweepLogsErrors checks that without WithSweepReport a failed pass
// is logged through slog.Default. It is not parallel: it replaces the
// default logger while it runs.
func TestSweepLogsErrors(t *testing.T) {
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)

	db := sqliteBackend(t).Open(t, "")
	s, err := sqlstore.New(db, sqlstore.WithTable("no_such_table"), sqlstore.WithSweepInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "no such table") {
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged in 10 s; the log holds %q", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, `msg="sqlstore: sweep of expired sessions failed"`) {
		t.Errorf("log = %q", out)
	}
}

// syncBuffer is a bytes.Buffer that a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
