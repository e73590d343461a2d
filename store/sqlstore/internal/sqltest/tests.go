package sqltest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// Conformance runs the storetest suite, on a Store whose dialect New
// tells from the driver.
func Conformance(t *testing.T, b Backend) {
	db := b.Open(t, "")
	_, s := NewTable(t, db) // the dialect comes from the driver
	if b.Hooks.DialectOf != nil {
		if got := b.Hooks.DialectOf(s); got != b.Dialect {
			t.Fatalf("New detected %v from %T; want %v", got, db.Driver(), b.Dialect)
		}
	}
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// ConcurrentIncrements has two connection pools, as two application
// servers would have, race compare-and-set increments of one counter.
func ConcurrentIncrements(t *testing.T, b Backend) {
	db1, db2 := b.Open(t, ""), b.Open(t, "")
	table, s1 := NewTable(t, db1)
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
}

// ExpiredRowIsReplaced checks that a row past its expiry does not load,
// refuses its old version, and gives way to a new session.
func ExpiredRowIsReplaced(t *testing.T, b Backend) {
	db := b.Open(t, "")
	table, s := NewTable(t, db)
	ctx := context.Background()
	v1, err := s.Save(ctx, "k", []byte("old"), 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(b.Expire, table)); err != nil {
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
}

// DeleteExpired checks that DeleteExpired deletes the expired rows, and
// only those, in as many statements as it takes.
func DeleteExpired(t *testing.T, b Backend) {
	db := b.Open(t, "")
	table, s := NewTable(t, db)
	if b.Hooks.SetDeleteBatch != nil {
		b.Hooks.SetDeleteBatch(s, 4) // so that it takes several statements
	}
	ctx := context.Background()
	const expired, live = 10, 3
	for i := range expired {
		if _, err := s.Save(ctx, fmt.Sprint("expired-", i), []byte("x"), 0, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(b.Expire, table)); err != nil {
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
}

// CorruptRow checks that a row with version 0, which this package
// never writes, gives ErrCorrupt on Load, counts as a conflict on Save,
// and can be deleted.
func CorruptRow(t *testing.T, b Backend) {
	db := b.Open(t, "")
	table, s := NewTable(t, db)
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
}

// Keys checks that keys are compared byte for byte: not folded in case,
// not trimmed, not truncated, and free to hold any byte.
func Keys(t *testing.T, b Backend) {
	_, s := NewTable(t, b.Open(t, ""))
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
	switch b.Dialect {
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
}

// SaveRejectsNonPositiveTTL checks that Save refuses a ttl <= 0 and
// stores nothing.
func SaveRejectsNonPositiveTTL(t *testing.T, b Backend) {
	_, s := NewTable(t, b.Open(t, ""))
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(ctx, "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if _, _, err := s.Load(ctx, "k", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after rejected Saves = %v; want ErrNotFound", err)
	}
}

// CreateTableTwice checks that CreateTable on an existing table keeps
// its rows.
func CreateTableTwice(t *testing.T, b Backend) {
	_, s := NewTable(t, b.Open(t, ""))
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
}

// Sweep checks that WithSweepInterval deletes the rows of expired
// sessions, and only those, without DeleteExpired being called, and that
// Close stops it.
func Sweep(t *testing.T, b Backend) {
	db := b.Open(t, "")
	table, _ := NewTable(t, db)
	var log SweepLog
	s, err := sqlstore.New(db, sqlstore.WithTable(table),
		sqlstore.WithSweepInterval(50*time.Millisecond), sqlstore.WithSweepReport(log.Report))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const expiring = 5
	for i := range expiring {
		if _, err := s.Save(ctx, fmt.Sprint("short-", i), []byte("x"), 0, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Save(ctx, "long", []byte("x"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := RowCount(t, db, table, "short-"); n != expiring {
		t.Fatalf("%d rows right after the Saves; want %d", n, expiring)
	}
	deadline := time.Now().Add(10 * time.Second)
	for RowCount(t, db, table, "short-") > 0 {
		if time.Now().After(deadline) {
			passes, deleted, errs := log.Get()
			t.Fatalf("expired rows still there after 10 s: %d passes deleted %d rows; errors: %v", passes, deleted, errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := RowCount(t, db, table, "long"); n != 1 {
		t.Fatalf("the live row is gone (%d rows)", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkStopped(t, b, s)
	passes, deleted, errs := log.Get()
	if deleted != expiring || len(errs) > 0 {
		t.Errorf("the sweep reported %d deleted rows in %d passes, errors %v; want %d, no error", deleted, passes, errs, expiring)
	}
	// Stopped: no more passes, and Close again is harmless.
	time.Sleep(150 * time.Millisecond)
	if p, _, _ := log.Get(); p != passes {
		t.Errorf("%d passes after Close", p-passes)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Close leaves db open and the Store usable.
	if _, _, err := s.Load(ctx, "long", 0); err != nil {
		t.Errorf("Load after Close: %v", err)
	}
}

// SweepReportsErrors has a sweep fail, on a table that does not exist,
// and checks that each failure reaches the report and nothing panics.
func SweepReportsErrors(t *testing.T, b Backend) {
	db := b.Open(t, "")
	var log SweepLog
	s, err := sqlstore.New(db, sqlstore.WithTable("gstest_no_such_table"),
		sqlstore.WithSweepInterval(20*time.Millisecond), sqlstore.WithSweepReport(log.Report))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if passes, _, errs := log.Get(); len(errs) >= 2 {
			if len(errs) != passes {
				t.Errorf("%d of %d passes failed; want all", len(errs), passes)
			}
			if !strings.Contains(errs[0].Error(), "sqlstore: delete expired: ") {
				t.Errorf("error %q lacks the store's prefix", errs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no two sweep errors reported in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	checkStopped(t, b, s)
}

// NoSweepByDefault checks that without WithSweepInterval no goroutine
// deletes anything, and that Close is still safe.
func NoSweepByDefault(t *testing.T, b Backend) {
	db := b.Open(t, "")
	table, s := NewTable(t, db)
	if b.Hooks.SweepDone != nil && b.Hooks.SweepDone(s) != nil {
		t.Fatal("a Store without WithSweepInterval started a sweep")
	}
	if _, err := s.Save(context.Background(), "short", []byte("x"), 0, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := RowCount(t, db, table, "short"); n != 1 {
		t.Fatalf("%d rows; want the expired one still there", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close of a Store without a sweep: %v", err)
	}
}
