// Package sqlstore keeps sessions in a table of a PostgreSQL, MySQL,
// MariaDB or SQLite database, through database/sql.
//
// It is a Go module of its own, so that SQL drivers never reach programs
// that use only the core module. Package sqlstore imports no driver: the
// program opens a *sql.DB with the driver of its choice
// (github.com/jackc/pgx/v5/stdlib or github.com/lib/pq for PostgreSQL,
// github.com/go-sql-driver/mysql for MySQL and MariaDB, modernc.org/sqlite
// for SQLite) and hands it to New. For SQLite, package sqlitedb in this
// module opens a database file with modernc.org/sqlite, a driver in pure
// Go (no cgo), and the settings that concurrent writers need; it is the
// only package of the module that imports a driver, so programs that use
// another database never compile it, nor download its source.
//
// Each session is one row of the table (default "ginsession_sessions"),
// which CreateTable creates:
//
//	session_key  bytea / varbinary(255) / BLOB      primary key, the key as given
//	data         bytea / longblob / BLOB            the payload
//	version      bigint / bigint / INTEGER          the version, as a signed 64-bit number
//	expires_at   timestamptz / datetime(6) (UTC) /  indexed, for DeleteExpired
//	             INTEGER (microseconds since 1970, UTC)
//
// Expiry follows the database's clock, never the application's, so that
// any number of application servers agree on it: every statement computes
// times with the database's now() (PostgreSQL), UTC_TIMESTAMP(6) (MySQL)
// or julianday('now') (SQLite, whose clock is that of the machine holding
// the file, in milliseconds). A ttl is passed in whole microseconds,
// rounded up.
//
// Every operation is one statement, except two on MySQL, which has no
// RETURNING on UPDATE and no conditional upsert whose outcome can be told
// from the number of rows it affected whatever the connection's flags:
//
//	                     PostgreSQL, SQLite           MySQL / MariaDB
//	Load, ttl <= 0       SELECT                       SELECT
//	Load, ttl > 0        UPDATE ... RETURNING         SELECT, then UPDATE of the expiry
//	                                                  if a row was found
//	Save, version 0      INSERT ... ON CONFLICT       INSERT IGNORE, then UPDATE of an
//	                     DO UPDATE ... WHERE expired  expired row if the key was taken
//	Save, version v      UPDATE ... WHERE version     UPDATE ... WHERE version
//	Delete               DELETE                       DELETE
//
// How many network round trips a statement costs is up to the driver: one
// with pgx or with go-sql-driver/mysql and interpolateParams=true in the
// DSN; two (prepare, then execute) with go-sql-driver/mysql's default. See
// the README.
//
// SQLite lets one connection write at a time, database-wide, and each of
// the statements above is atomic, so compare-and-set needs no transaction:
// a Save is one conditional statement, and whether it changed a row says
// whether it won. A statement that finds the database locked by another
// connection, of this process or another, waits for it as long as the
// connection's busy_timeout allows, which must therefore be set (sqlitedb
// sets it); CreateTable refuses a connection without one.
//
// Expired rows never load, and Save replaces them, but by default nothing
// deletes them: call DeleteExpired from a periodic job, or have the Store
// do it with WithSweepInterval, and Close the Store when done with it.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/ginsession/ginsession/store"
)

// DefaultTable is the name of the table a Store uses unless WithTable
// says otherwise.
const DefaultTable = "ginsession_sessions"

// deleteBatch is how many rows one statement of DeleteExpired deletes at
// most.
const deleteBatch = 1000

// ErrCorrupt is wrapped by the error Load returns when the row for a key
// holds version 0, which this package never writes.
var ErrCorrupt = store.NewCorruptError("sqlstore: corrupt row")

// ErrNoBusyTimeout is returned by CreateTable on SQLite when the
// connection's busy_timeout is 0, as it is by default with
// modernc.org/sqlite. Open the database with package sqlitedb, or add
// _pragma=busy_timeout(5000) to the DSN.
var ErrNoBusyTimeout = errors.New("sqlstore: the SQLite connection has no busy_timeout, so concurrent writes would fail with \"database is locked\"; open it with package sqlitedb, or add _pragma=busy_timeout(5000) to the DSN")

// Store is a store.Store backed by a SQL table. It is safe for concurrent
// use, also by other processes using the same table.
//
// Its errors never contain keys: a key holds a session ID, which must not
// end up in logs.
type Store struct {
	db      *sql.DB
	dialect Dialect
	table   string
	q       statements
	batch   int // rows per statement of DeleteExpired

	sweepInterval time.Duration                  // 0: no sweep
	sweepReport   func(deleted int64, err error) // nil: log errors
	sweeper       *store.Sweeper                 // nil without a sweep
}

var _ store.Store = (*Store)(nil)

// An Option configures a Store.
type Option func(*Store)

// WithDialect sets the kind of database. By default New tells it from the
// driver of db, which works for the drivers of github.com/jackc/pgx (v4
// and v5), github.com/lib/pq and github.com/go-sql-driver/mysql, but not
// for a driver that wraps one of them, for instrumentation say.
func WithDialect(d Dialect) Option {
	return func(s *Store) { s.dialect = d }
}

// WithTable sets the name of the table; the default is DefaultTable. The
// name must be a plain identifier (ASCII letters, digits and underscores,
// not starting with a digit, at most 48 bytes). It is quoted in every
// statement, so it may be a reserved word, and in PostgreSQL its case
// matters. To use another PostgreSQL schema, set the search_path of the
// connections.
func WithTable(name string) Option {
	return func(s *Store) { s.table = name }
}

// New returns a Store that keeps sessions in a table of db. It does not
// contact the database: call CreateTable, or create the table as the
// README shows, before the first request. The Store never closes db. With
// WithSweepInterval, New starts a goroutine that Close stops.
func New(db *sql.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: the *sql.DB is nil")
	}
	s := &Store{db: db, table: DefaultTable, batch: deleteBatch}
	for _, o := range opts {
		o(s)
	}
	if s.dialect == 0 {
		d, ok := detectDialect(db.Driver())
		if !ok {
			return nil, fmt.Errorf("sqlstore: cannot tell the kind of database from the driver %T; use WithDialect", db.Driver())
		}
		s.dialect = d
	}
	if s.dialect != Postgres && s.dialect != MySQL && s.dialect != SQLite {
		return nil, fmt.Errorf("sqlstore: unknown %v", s.dialect)
	}
	if !tableName.MatchString(s.table) {
		return nil, fmt.Errorf("sqlstore: table name %q is not a plain identifier of at most 48 bytes", s.table)
	}
	s.q = newStatements(s.dialect, s.table)
	s.startSweep()
	return s, nil
}

// CreateTable creates the table and its index on expires_at unless they
// exist. It does not change a table that exists. On PostgreSQL it holds a
// transaction-scoped advisory lock meanwhile, so that servers starting at
// the same time don't trip over each other's CREATE TABLE. On SQLite it
// first checks that the connection waits for locks (PRAGMA busy_timeout
// is not 0), and fails otherwise: without it, any two concurrent writes
// would make one fail at once with "database is locked".
func (s *Store) CreateTable(ctx context.Context) error {
	if s.dialect == SQLite {
		var ms int64
		if err := s.db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&ms); err != nil {
			return fmt.Errorf("sqlstore: create table: %w", err)
		}
		if ms <= 0 {
			return ErrNoBusyTimeout
		}
	}
	if err := s.createTable(ctx); err != nil {
		return fmt.Errorf("sqlstore: create table: %w", err)
	}
	return nil
}

func (s *Store) createTable(ctx context.Context) error {
	if s.dialect != Postgres {
		for _, stmt := range s.q.createTable {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	h := fnv.New64a()
	h.Write([]byte("ginsession/sqlstore:" + s.table))
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return err
	}
	for _, stmt := range s.q.createTable {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Load implements store.Store. With ttl > 0 it renews the expiry: in the
// same statement on PostgreSQL and SQLite, in a second one on MySQL (only
// when the row exists), which renews the row only if it still holds the
// version that was read.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	var (
		data    []byte
		version int64
		err     error
	)
	if ttl > 0 && s.dialect != MySQL {
		err = s.db.QueryRowContext(ctx, s.q.loadRenew, []byte(key), micros(ttl)).Scan(&data, &version)
	} else {
		err = s.db.QueryRowContext(ctx, s.q.load, []byte(key)).Scan(&data, &version)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, store.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("sqlstore: load: %w", err)
	}
	if version == 0 {
		return nil, 0, fmt.Errorf("%w: the row holds version 0", ErrCorrupt)
	}
	if ttl > 0 && s.dialect == MySQL {
		// If another writer changed or deleted the row in between, this
		// renews nothing, and this Load is as if it came first.
		if _, err := s.db.ExecContext(ctx, s.q.renew, micros(ttl), []byte(key), version); err != nil {
			return nil, 0, fmt.Errorf("sqlstore: load: renew: %w", err)
		}
	}
	if data == nil {
		data = []byte{}
	}
	return data, uint64(version), nil
}

// Save implements store.Store with one INSERT (version 0) or UPDATE; on
// MySQL, a Save with version 0 that finds the key taken runs a second
// statement, an UPDATE that succeeds if the row has expired. It returns an
// error if ttl <= 0, and on MySQL if the key is longer than 255 bytes.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("sqlstore: save: ttl must be positive, got %v", ttl)
	}
	if s.dialect == MySQL && len(key) > mysqlMaxKey {
		return 0, fmt.Errorf("sqlstore: save: the key is %d bytes, longer than the %d of the MySQL key column", len(key), mysqlMaxKey)
	}
	if data == nil {
		data = []byte{} // NULL would break NOT NULL
	}
	newVersion := nextVersion(version)
	k, nv, us := []byte(key), int64(newVersion), micros(ttl)

	var saved bool
	var err error
	if version == 0 {
		saved, err = s.exec(ctx, s.q.create, k, data, nv, us)
		if err == nil && !saved && s.dialect == MySQL {
			// A row exists, live or expired. If it was expired when the
			// INSERT ran and has been deleted since, this reports a
			// conflict, and the caller's next attempt succeeds.
			saved, err = s.exec(ctx, s.q.replaceExpired, data, nv, us, k)
		}
	} else {
		saved, err = s.exec(ctx, s.q.update, data, nv, us, k, int64(version))
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: save: %w", err)
	}
	if !saved {
		return 0, store.ErrConflict
	}
	return newVersion, nil
}

// exec runs a statement that changes at most one row and reports whether
// it changed one. Every such statement writes a new version, so the row
// always differs from what it was, and MySQL's count of affected rows is
// the same whether or not the connection asks for found rows instead.
func (s *Store) exec(ctx context.Context, query string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// Delete implements store.Store with one DELETE.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, s.q.delete, []byte(key)); err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	return nil
}

// DeleteExpired deletes the rows of expired sessions and returns how many
// it deleted. Expired sessions never load whether or not their rows are
// deleted, but nothing else deletes them, so a program should call
// DeleteExpired periodically, every few minutes say, from one server or
// from all (concurrent calls are safe), or let the Store call it with
// WithSweepInterval. It deletes in statements of at
// most 1000 rows each, so that no statement holds many locks for long,
// until a statement deletes fewer; ctx can stop it between statements.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, s.q.deleteExpired, s.batch)
		if err != nil {
			return total, fmt.Errorf("sqlstore: delete expired: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlstore: delete expired: %w", err)
		}
		total += n
		if n < int64(s.batch) {
			return total, nil
		}
	}
}

// nextVersion returns a random version that is neither 0 nor old.
func nextVersion(old uint64) uint64 {
	for {
		if v := rand.Uint64(); v != 0 && v != old {
			return v
		}
	}
}

// micros returns ttl in whole microseconds, rounded up.
func micros(ttl time.Duration) int64 {
	us := ttl / time.Microsecond
	if ttl%time.Microsecond != 0 {
		us++
	}
	return int64(us)
}
