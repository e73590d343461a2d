// Command ferretserver runs FerretDB, a server that speaks MongoDB's wire
// protocol, as a stand-in for mongod in the mongostore tests. It keeps its
// data in SQLite files (or in PostgreSQL) and listens on TCP, so the tests
// talk to a separate server process, as they would to mongod.
//
//	ferretserver -listen 127.0.0.1:27018 -dir /tmp/ferretdata
//
// FerretDB v1 runs an update or findAndModify as a query followed by an
// unconditional write of the whole document, so two commands on one
// document at the same time can both act on what the query saw, and a
// conditional update is not atomic. MongoDB applies each single-document
// write atomically. To stand in for MongoDB, ferretserver therefore passes
// the client connections through a proxy that runs one write command at a
// time; -serialize-writes=false lets clients talk to FerretDB directly.
//
// It runs until it gets SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", `storage: "sqlite" or "postgresql"`)
	dir := flag.String("dir", "", "directory of the SQLite files (sqlite handler); must exist")
	pgURL := flag.String("postgresql-url", "postgres://postgres@127.0.0.1:5432/test", "database (postgresql handler)")
	serialize := flag.Bool("serialize-writes", true, "run one write command at a time, for MongoDB's single-document atomicity")
	logLevel := flag.String("log-level", "warn", "FerretDB's log level: debug, info, warn or error")
	flag.Parse()

	if err := run(*listen, *handler, *dir, *pgURL, *serialize, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "ferretserver:", err)
		os.Exit(1)
	}
}

func run(listen, handler, dir, pgURL string, serialize bool, logLevel string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	conf := &ferretdb.Config{Handler: handler, Logger: logger}
	switch handler {
	case "sqlite":
		if dir == "" {
			return errors.New("the sqlite handler needs -dir")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		conf.SQLiteURL = "file:" + abs + "/"
	case "postgresql":
		conf.PostgreSQLURL = pgURL
	default:
		return fmt.Errorf("unknown -handler %q", handler)
	}

	// Without the proxy FerretDB listens on the TCP address itself; with
	// it, on a Unix socket that only the proxy uses.
	var socket string
	if serialize {
		sockDir, err := os.MkdirTemp("", "ferretserver")
		if err != nil {
			return err
		}
		defer os.RemoveAll(sockDir)
		socket = filepath.Join(sockDir, "ferretdb.sock")
		conf.Listener.Unix = socket
	} else {
		conf.Listener.TCP = listen
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := ferretdb.New(conf)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- db.Run(ctx) }()

	if !serialize {
		logger.Warn("listening; writes are not serialized", "addr", listen)
		return <-done
	}

	// ferretdb.New has bound the socket already: connections wait in its
	// backlog until Run accepts them.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	p := &proxy{backend: socket, logger: logger}
	logger.Warn("listening; writes are serialized", "addr", ln.Addr().String())
	p.serve(ln)
	return <-done
}
