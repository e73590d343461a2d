// Package sqlitedb opens a SQLite database file for package sqlstore,
// with modernc.org/sqlite, a driver in pure Go (no cgo).
//
// It is the only package of the sqlstore module that imports a SQLite
// driver: a program that keeps sessions in PostgreSQL or MySQL never
// compiles it, and Go never downloads the driver's source for it.
//
//	db, err := sqlitedb.Open("/var/lib/shop/sessions.db")
//	sessions, err := sqlstore.New(db) // the dialect is told from the driver
//	err = sessions.CreateTable(ctx)
//
// A program that opens the database itself, with this driver or another,
// needs the same settings: see Open.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// BusyTimeout is how long a statement of a connection that Open returns
// waits for a lock that another connection holds, of this process or of
// another, before it fails with "database is locked" (SQLITE_BUSY).
const BusyTimeout = 5 * time.Second

// Open opens the SQLite database in the file at path, creating the file if
// it does not exist, checks that it can be read, and returns a pool of
// connections to it. Each connection waits up to BusyTimeout for locks
// (PRAGMA busy_timeout), and Open puts the database in WAL mode (PRAGMA
// journal_mode=WAL), which is kept in the file: readers then never wait
// for the writer, nor the writer for readers. WAL needs every process
// using the database to be on the same machine, with the file on a local
// file system, not a network share.
//
// These are the DSN parameters of modernc.org/sqlite:
//
//	path?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)
//
// path must name a file: "", ":memory:" and paths containing '?' (which
// the driver would take for the start of its parameters) are refused,
// since every connection of a pool would get a database of its own. The
// caller closes the returned *sql.DB.
func Open(path string) (*sql.DB, error) {
	switch {
	case path == "" || path == ":memory:":
		return nil, fmt.Errorf("sqlitedb: %q is not a file: each connection of the pool would get a database of its own", path)
	case strings.ContainsRune(path, '?'):
		return nil, errors.New("sqlitedb: the path contains '?', which modernc.org/sqlite takes for the start of its parameters")
	}
	q := url.Values{"_pragma": {
		"busy_timeout(" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) + ")",
		"journal_mode(WAL)",
	}}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*BusyTimeout)
	defer cancel()
	// sql.Open connects lazily; a connection, which runs the pragmas,
	// shows now whether the file can be opened and read.
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	return db, nil
}
