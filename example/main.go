// Command example is Gopher Goods, a small shop built on ginsession: a
// catalogue, a cart that survives an abandoned visit and follows a
// logged-in customer to any browser, login and logout, a "Your sessions"
// page that logs other devices out, flash messages, CSRF-protected forms,
// and a JSON API under /api whose clients carry a bearer token.
//
// Run it from the repository root:
//
//	go run ./example                                   # in-process store
//	go run ./example -redis redis://127.0.0.1:6379/0   # Redis: carts survive a restart
//	go run ./example -store sqlite shop.db             # a SQLite file: the same, no server
//
// Flags:
//
//	-addr   listen address (default 127.0.0.1:8080)
//	-redis  Redis URL; also read from REDIS_URL. Selects the Redis store.
//	-store  memory, redis, null, or sqlite PATH. null keeps nothing
//	        (sessions switched off): every page still works, but the cart
//	        stays empty. sqlite keeps sessions and carts in the SQLite
//	        file PATH (created if missing), through sqlstore. The default
//	        is redis when a Redis URL is given, memory otherwise.
//	-secure the shop is reached over HTTPS (e.g. through a TLS-terminating
//	        proxy): cookies get the Secure attribute, and the CSRF cookie
//	        is named __Host-csrf.
//	-otel   print OpenTelemetry spans and metrics of the session loads and
//	        commits to stdout, as JSON (the log goes to stderr).
//
// Environment:
//
//	SHOP_SECRET  at least 32 bytes that sign the CSRF tokens. Give every
//	             instance the same one. Unset means a random secret per
//	             process: forms loaded before a restart then get 403.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/nullstore"
	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/sqlstore/sqlitedb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, log, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Error("example: " + err.Error())
		os.Exit(1)
	}
}

// run parses the flags, serves the shop until ctx is done, then shuts the
// server down gracefully. ready, if not nil, is called with the address
// once the server listens.
func run(ctx context.Context, args []string, getenv func(string) string, usage io.Writer, log *slog.Logger, ready func(addr string)) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(usage)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	redisURL := fs.String("redis", getenv("REDIS_URL"), "Redis URL, e.g. redis://127.0.0.1:6379/0 (default $REDIS_URL); selects the Redis store")
	storeKind := fs.String("store", "", "where sessions live: memory, redis, null, or sqlite PATH (default: redis if a Redis URL is given, else memory)")
	secure := fs.Bool("secure", false, "the shop is reached over HTTPS: Secure cookies, and a __Host-csrf cookie")
	withOTel := fs.Bool("otel", false, "print OpenTelemetry spans and metrics of session loads and commits to stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// -store sqlite takes the database file as the next argument; more
	// flags may follow it.
	var sqlitePath string
	if *storeKind == "sqlite" && fs.NArg() > 0 {
		sqlitePath = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	// The secret comes from the environment, not a flag, so that it does
	// not show in the process list.
	var secret []byte
	if v := getenv("SHOP_SECRET"); v != "" {
		if len(v) < csrfKeyLen {
			return fmt.Errorf("SHOP_SECRET: %w", errShortSecret)
		}
		secret = []byte(v)
	}

	kind := *storeKind
	if kind == "" {
		kind = "memory"
		if *redisURL != "" {
			kind = "redis"
		}
	}
	st, closeStore, err := openStore(ctx, kind, *redisURL, sqlitePath)
	if err != nil {
		return err
	}
	defer closeStore()

	var observer ginsession.Observer
	if *withOTel {
		obs, shutdown, err := newOTel(otelOutput, kind)
		if err != nil {
			return err
		}
		// After the server has shut down: flush the last spans and metrics.
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				log.Warn("OpenTelemetry shutdown", "err", err)
			}
		}()
		observer = obs
	}

	// Listen first, so that a taken port is reported before the demo
	// passwords are hashed.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close() // in case newServer fails; Shutdown closes it otherwise
	gin.SetMode(gin.ReleaseMode)
	h, err := newServer(serverConfig{Store: st, StoreName: kind, Logger: log, Secret: secret, Secure: *secure, Observer: observer})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logRequests(log, h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("Gopher Goods is open", "url", "http://"+ln.Addr().String(), "store", kind)
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	log.Info("stopped")
	return nil
}

// openStore returns the store the flags ask for and a function that
// releases it.
func openStore(ctx context.Context, kind, redisURL, sqlitePath string) (store.Store, func(), error) {
	switch kind {
	case "memory":
		return memstore.New(), func() {}, nil
	case "null":
		return nullstore.New(), func() {}, nil
	case "redis":
		if redisURL == "" {
			return nil, nil, errors.New("-store redis needs -redis URL or REDIS_URL")
		}
		opts, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("-redis: %w", err)
		}
		client := redis.NewClient(opts)
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := client.Ping(pingCtx).Err(); err != nil {
			client.Close()
			// opts.Addr, not the URL: the URL may hold a password.
			return nil, nil, fmt.Errorf("cannot reach Redis at %s (db %d): %w", opts.Addr, opts.DB, err)
		}
		return redisstore.New(client), func() { client.Close() }, nil
	case "sqlite":
		return openSQLite(ctx, sqlitePath)
	default:
		return nil, nil, fmt.Errorf("-store %q: want memory, redis or null, or sqlite PATH", kind)
	}
}

// sweepInterval is how often the SQLite store deletes expired sessions.
const sweepInterval = 10 * time.Minute

// openSQLite opens the SQLite store in the file at path, creating the file
// and the table if needed.
func openSQLite(ctx context.Context, path string) (store.Store, func(), error) {
	if path == "" {
		return nil, nil, errors.New("-store sqlite needs the database file: -store sqlite PATH")
	}
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-store sqlite: %w", err)
	}
	st, err := sqlstore.New(db, sqlstore.WithSweepInterval(sweepInterval))
	if err == nil {
		err = st.CreateTable(ctx)
	}
	if err != nil {
		if st != nil {
			st.Close()
		}
		db.Close()
		return nil, nil, fmt.Errorf("-store sqlite: %w", err)
	}
	return st, func() {
		st.Close() // stops the sweep, then the connections go
		db.Close()
	}, nil
}

// logRequests logs one line per request: method, path, status, duration.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start).Round(time.Microsecond))
	})
}

// statusRecorder remembers the status a handler sent.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Flush lets gin flush through the recorder.
func (r *statusRecorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }

// Unwrap gives http.ResponseController the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
