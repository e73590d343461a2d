package sqlstore_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/sqlstore/internal/sqltest"
	"github.com/ginsession/ginsession/store/storetest"
)

// forEachBackend runs test, in parallel, against the PostgreSQL server
// named by GINSESSION_POSTGRES_URL and the MySQL or MariaDB server named by
// GINSESSION_MYSQL_DSN.
func forEachBackend(t *testing.T, test func(t *testing.T, b sqltest.Backend)) {
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

// hooks reach into a Store, for the tests of package sqltest.
var hooks = sqltest.Hooks{
	DialectOf:      sqlstore.DialectOf,
	SetDeleteBatch: sqlstore.SetDeleteBatch,
	SweepDone:      sqlstore.SweepDone,
}

func postgres(t *testing.T) sqltest.Backend {
	url := storetest.ServerEnv(t, "GINSESSION_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("GINSESSION_POSTGRES_URL: %v", err)
	}
	return sqltest.Backend{
		Dialect: sqlstore.Postgres,
		Addr:    fmt.Sprintf("%s:%d", cfg.Host, cfg.Port),
		Open: func(t *testing.T, proxy string) *sql.DB {
			if proxy == "" {
				db, err := sql.Open("pgx", url)
				if err != nil {
					t.Fatal(err)
				}
				return sqltest.Ping(t, db)
			}
			c := cfg.Copy()
			c.Fallbacks = nil
			host, port := splitHostPort(t, proxy)
			c.Host, c.Port = host, uint16(port)
			return sqltest.Ping(t, stdlib.OpenDB(*c))
		},
		Expire: `UPDATE %s SET expires_at = now() - interval '1 minute'`,
		Hooks:  hooks,
	}
}

// mysqlBackend returns the MySQL backend; with interpolate, its
// connections set interpolateParams=true.
func mysqlBackend(t *testing.T, interpolate bool) sqltest.Backend {
	dsn := storetest.ServerEnv(t, "GINSESSION_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("GINSESSION_MYSQL_DSN: %v", err)
	}
	if interpolate {
		cfg.InterpolateParams = true
	}
	return sqltest.Backend{
		Dialect: sqlstore.MySQL,
		Addr:    cfg.Addr,
		Open: func(t *testing.T, proxy string) *sql.DB {
			c := cfg.Clone()
			if proxy != "" {
				c.Net, c.Addr = "tcp", proxy
			}
			connector, err := mysql.NewConnector(c)
			if err != nil {
				t.Fatal(err)
			}
			return sqltest.Ping(t, sql.OpenDB(connector))
		},
		Expire: `UPDATE %s SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE`,
		Hooks:  hooks,
	}
}

// TestBackends runs the tests of package sqltest against PostgreSQL and
// MySQL. Package sqlitedb runs them against SQLite.
func TestBackends(t *testing.T) {
	t.Parallel()
	for _, test := range sqltest.Tests {
		t.Run(test.Name, func(t *testing.T) { forEachBackend(t, test.Run) })
	}
}

// TestConformanceInterpolateParams runs the suite once more on MySQL with
// the DSN setting that the README recommends, which sends payloads as
// escaped literals rather than as parameters of a prepared statement.
func TestConformanceInterpolateParams(t *testing.T) {
	t.Parallel()
	b := mysqlBackend(t, true)
	_, s := sqltest.NewTable(t, b.Open(t, ""))
	storetest.Run(t, func(*testing.T) store.Store { return s })
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
