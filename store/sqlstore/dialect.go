package sqlstore

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"regexp"
)

// A Dialect is the kind of SQL database a Store talks to.
type Dialect int

const (
	// Postgres is PostgreSQL. The statements need 9.5 or later (for
	// INSERT ... ON CONFLICT); the tests run against 15.
	Postgres Dialect = iota + 1
	// MySQL is MySQL or MariaDB. The statements use nothing that MySQL 5.7
	// or MariaDB 10.3 lack; the tests run against MariaDB 10.11 only.
	MySQL
	// SQLite is a SQLite database file. The statements need SQLite 3.35 or
	// later (for UPDATE ... RETURNING); the tests run against the SQLite
	// that modernc.org/sqlite bundles. See the package documentation for
	// how to open the database.
	SQLite
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "Postgres"
	case MySQL:
		return "MySQL"
	case SQLite:
		return "SQLite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// detectDialect tells the dialect from the package of the driver: the
// drivers known here register themselves under their own package path.
func detectDialect(d driver.Driver) (Dialect, bool) {
	t := reflect.TypeOf(d)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return 0, false
	}
	switch t.PkgPath() {
	case "github.com/jackc/pgx/v5/stdlib", "github.com/jackc/pgx/v4/stdlib", "github.com/lib/pq":
		return Postgres, true
	case "github.com/go-sql-driver/mysql":
		return MySQL, true
	case "modernc.org/sqlite", "github.com/mattn/go-sqlite3":
		return SQLite, true
	}
	return 0, false
}

// tableName is what WithTable accepts. The limit leaves room for the
// index name, the table's name with "_expires_at_idx" appended, within
// the 63 bytes that PostgreSQL and the 64 that MySQL allow (SQLite has
// no limit).
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

// mysqlMaxKey is the length of the key column of the MySQL table.
const mysqlMaxKey = 255

// statements are the SQL a Store runs, for one dialect and table.
type statements struct {
	// load selects data and version of a live row; args: key.
	load string
	// loadRenew (Postgres, SQLite) renews a live row's expiry and returns its
	// data and version; args: key, ttl in microseconds.
	loadRenew string
	// renew (MySQL) renews the expiry of the row load returned; args: ttl
	// in microseconds, key, version.
	renew string
	// create inserts a row unless a live one exists (Postgres, SQLite:
	// replacing an expired one); args: key, data, version, ttl in
	// microseconds.
	create string
	// replaceExpired (MySQL) overwrites an expired row; args: data,
	// version, ttl in microseconds, key.
	replaceExpired string
	// update overwrites a live row of the given version; args: data, new
	// version, ttl in microseconds, key, version.
	update string
	// delete removes a row; args: key.
	delete string
	// deleteExpired removes up to a batch of expired rows; args: batch.
	deleteExpired string
	// createTable creates the table and its index; no args.
	createTable []string
}

func newStatements(d Dialect, table string) statements {
	switch d {
	case Postgres:
		return postgresStatements(`"`+table+`"`, `"`+table+`_expires_at_idx"`)
	case SQLite:
		return sqliteStatements(`"`+table+`"`, `"`+table+`_expires_at_idx"`)
	default:
		return mysqlStatements("`"+table+"`", "`"+table+"_expires_at_idx`")
	}
}

// PostgreSQL's now() is the start of the transaction, here of the single
// statement. A ttl reaches the server as a number of microseconds, the
// resolution of timestamptz.
func postgresStatements(t, index string) statements {
	const expires = `now() + $%d::bigint * interval '1 microsecond'`
	return statements{
		load: `SELECT data, version FROM ` + t + ` WHERE session_key = $1 AND expires_at > now()`,
		loadRenew: `UPDATE ` + t + ` SET expires_at = ` + fmt.Sprintf(expires, 2) +
			` WHERE session_key = $1 AND expires_at > now() RETURNING data, version`,
		create: `INSERT INTO ` + t + ` AS s (session_key, data, version, expires_at) VALUES ($1, $2, $3, ` + fmt.Sprintf(expires, 4) + `)` +
			` ON CONFLICT (session_key) DO UPDATE SET data = excluded.data, version = excluded.version, expires_at = excluded.expires_at` +
			` WHERE s.expires_at <= now()`,
		update: `UPDATE ` + t + ` SET data = $1, version = $2, expires_at = ` + fmt.Sprintf(expires, 3) +
			` WHERE session_key = $4 AND version = $5 AND expires_at > now()`,
		delete: `DELETE FROM ` + t + ` WHERE session_key = $1`,
		// The outer condition is checked again on a row that a renewing
		// Load changed meanwhile, so a renewed session is never deleted.
		deleteExpired: `DELETE FROM ` + t + ` WHERE session_key IN (SELECT session_key FROM ` + t +
			` WHERE expires_at <= now() LIMIT $1) AND expires_at <= now()`,
		createTable: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	session_key bytea PRIMARY KEY,
	data bytea NOT NULL,
	version bigint NOT NULL,
	expires_at timestamptz NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS ` + index + ` ON ` + t + ` (expires_at)`,
		},
	}
}

// MySQL's UTC_TIMESTAMP(6) is fixed for the duration of a statement, and
// does not depend on the session's time zone, which DATETIME columns
// would otherwise silently follow.
func mysqlStatements(t, index string) statements {
	const expires = `UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND`
	return statements{
		load:  `SELECT data, version FROM ` + t + ` WHERE session_key = ? AND expires_at > UTC_TIMESTAMP(6)`,
		renew: `UPDATE ` + t + ` SET expires_at = ` + expires + ` WHERE session_key = ? AND version = ?`,
		// IGNORE turns a duplicate key into a warning and 0 rows. The key
		// length is checked beforehand, so IGNORE truncates nothing.
		create: `INSERT IGNORE INTO ` + t + ` (session_key, data, version, expires_at) VALUES (?, ?, ?, ` + expires + `)`,
		replaceExpired: `UPDATE ` + t + ` SET data = ?, version = ?, expires_at = ` + expires +
			` WHERE session_key = ? AND expires_at <= UTC_TIMESTAMP(6)`,
		update: `UPDATE ` + t + ` SET data = ?, version = ?, expires_at = ` + expires +
			` WHERE session_key = ? AND version = ? AND expires_at > UTC_TIMESTAMP(6)`,
		delete:        `DELETE FROM ` + t + ` WHERE session_key = ?`,
		deleteExpired: `DELETE FROM ` + t + ` WHERE expires_at <= UTC_TIMESTAMP(6) LIMIT ?`,
		createTable: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	session_key varbinary(255) NOT NULL PRIMARY KEY,
	data longblob NOT NULL,
	version bigint NOT NULL,
	expires_at datetime(6) NOT NULL,
	INDEX ` + index + ` (expires_at)
) ENGINE=InnoDB`,
		},
	}
}

// sqliteNow is the current time in microseconds since the Unix epoch, by
// SQLite's clock, which has millisecond resolution. SQLite computes 'now'
// once per statement step, and a statement that writes takes the
// database's write lock before it computes anything, so every use of
// sqliteNow in a statement sees the same instant, one at which the
// statement holds the lock. julianday() works in every SQLite version,
// unlike unixepoch('subsec') (3.42); it is exact to well under a
// millisecond, so rounding gives whole milliseconds.
const sqliteNow = `(CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000)`

// SQLite runs one writing statement at a time per database file, each
// atomically, so every operation is a single statement whose outcome is
// told by its changes() count or by RETURNING, as on PostgreSQL. expires_at
// holds microseconds since the Unix epoch, UTC.
func sqliteStatements(t, index string) statements {
	const now = sqliteNow
	return statements{
		load: `SELECT data, version FROM ` + t + ` WHERE session_key = ? AND expires_at > ` + now,
		loadRenew: `UPDATE ` + t + ` SET expires_at = ` + now + ` + ?2` +
			` WHERE session_key = ?1 AND expires_at > ` + now + ` RETURNING data, version`,
		create: `INSERT INTO ` + t + ` (session_key, data, version, expires_at) VALUES (?, ?, ?, ` + now + ` + ?)` +
			` ON CONFLICT (session_key) DO UPDATE SET data = excluded.data, version = excluded.version, expires_at = excluded.expires_at` +
			` WHERE ` + t + `.expires_at <= ` + now,
		update: `UPDATE ` + t + ` SET data = ?, version = ?, expires_at = ` + now + ` + ?` +
			` WHERE session_key = ? AND version = ? AND expires_at > ` + now,
		delete: `DELETE FROM ` + t + ` WHERE session_key = ?`,
		// One statement holds the write lock from start to end, so the
		// rows the subquery picks are still expired when they go.
		deleteExpired: `DELETE FROM ` + t + ` WHERE session_key IN (SELECT session_key FROM ` + t +
			` WHERE expires_at <= ` + now + ` LIMIT ?)`,
		createTable: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	session_key BLOB NOT NULL PRIMARY KEY,
	data BLOB NOT NULL,
	version INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS ` + index + ` ON ` + t + ` (expires_at)`,
		},
	}
}
