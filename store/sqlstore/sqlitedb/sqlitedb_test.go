package sqlitedb_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginsession/ginsession/store/sqlstore/sqlitedb"
)

func TestOpenRefusesWhatIsNotAFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, want string
	}{
		{"", "is not a file"},
		{":memory:", "is not a file"},
		{filepath.Join(t.TempDir(), "a?mode=memory"), "contains '?'"},
		{filepath.Join(t.TempDir(), "no", "such", "dir", "s.db"), "sqlitedb: open "},
	} {
		db, err := sqlitedb.Open(tc.path)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", tc.path)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v; want an error containing %q", tc.path, err, tc.want)
		}
	}
}

// TestOpenSettings checks that every connection of the pool, not only the
// first, waits for locks, and that the file is in WAL mode.
func TestOpenSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions.db")
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Open did not create the file: %v", err)
	}
	ctx := context.Background()
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 3 { // held at once, so three different connections
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var timeout int64
		var mode string
		if err := c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if timeout != sqlitedb.BusyTimeout.Milliseconds() || mode != "wal" {
			t.Errorf("connection %d: busy_timeout %d, journal_mode %q; want %d, wal", i, timeout, mode, sqlitedb.BusyTimeout.Milliseconds())
		}
	}
}
