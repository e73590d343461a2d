package sqlstore_test

import (
	"context"
	"database/sql"
	"log"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ginsession/ginsession/store/sqlstore"
)

func Example() {
	db, err := sql.Open("pgx", "postgres://app@db.example:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := sqlstore.New(db) // PostgreSQL, told from the driver
	if err != nil {
		log.Fatal(err)
	}
	if err := sessions.CreateTable(context.Background()); err != nil {
		log.Fatal(err)
	}
	_ = sessions // ginsession.New(ginsession.Options{Store: sessions})
}

func Example_mySQL() {
	// interpolateParams=true sends each statement in one round trip
	// instead of a prepare and an execute.
	db, err := sql.Open("mysql", "app:secret@tcp(db.example:3306)/app?interpolateParams=true")
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := sqlstore.New(db, sqlstore.WithTable("myapp_sessions"))
	if err != nil {
		log.Fatal(err)
	}
	if err := sessions.CreateTable(context.Background()); err != nil {
		log.Fatal(err)
	}
	_ = sessions // ginsession.New(ginsession.Options{Store: sessions})
}

func ExampleStore_DeleteExpired() {
	db, err := sql.Open("pgx", "postgres://app@db.example:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := sqlstore.New(db)
	if err != nil {
		log.Fatal(err)
	}
	// Without WithSweepInterval the store starts no goroutine of its own;
	// here the program runs the cleanup, every five minutes until ctx
	// ends, and logs how it went.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		tick := time.NewTicker(5 * time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if n, err := sessions.DeleteExpired(ctx); err != nil {
					log.Printf("session cleanup: %v", err)
				} else if n > 0 {
					log.Printf("session cleanup: deleted %d expired sessions", n)
				}
			}
		}
	}()
}

func ExampleWithSweepInterval() {
	db, err := sql.Open("pgx", "postgres://app@db.example:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	// The store deletes expired rows every ten minutes, from a goroutine
	// of its own; failures are logged with slog.Default.
	sessions, err := sqlstore.New(db, sqlstore.WithSweepInterval(10*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close() // stops the sweep; db stays open
	_ = sessions           // ginsession.New(ginsession.Options{Store: sessions})
}
