package sqlitedb_test

import (
	"context"
	"log"
	"time"

	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/sqlstore/sqlitedb"
)

func ExampleOpen() {
	db, err := sqlitedb.Open("/var/lib/shop/sessions.db")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	// SQLite, told from the driver; expired rows deleted hourly.
	sessions, err := sqlstore.New(db, sqlstore.WithSweepInterval(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()
	if err := sessions.CreateTable(context.Background()); err != nil {
		log.Fatal(err)
	}
	_ = sessions // ginsession.New(ginsession.Options{Store: sessions})
}
