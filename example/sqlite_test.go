package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRun serves the shop with run and the given flags until the
// returned function stops it and checks that run returned nil.
func startRun(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	env := map[string]string{"SHOP_SECRET": strings.Repeat("s", 32)} // the same for every run
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, io.Discard,
			slog.New(slog.DiscardHandler), func(addr string) { addrs <- addr })
	}()
	select {
	case addr = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("run %q returned early: %v", args, err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("run %q: the server did not start", args)
	}
	return addr, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %q: %v", args, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("run %q did not return after its context ended", args)
		}
	}
}

// TestSQLiteSurvivesARestart runs the shop with -store sqlite twice on one
// file: the cart of the first run is there in the second, for the same
// browser, with no server involved.
func TestSQLiteSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")

	addr, stop := startRun(t, "-addr", "127.0.0.1:0", "-store", "sqlite", path)
	b := newBrowser(t, &httptest.Server{URL: "http://" + addr})
	b.get("/")
	b.add("mug", 2)
	b.add("socks", 1)
	want := Cart{"mug": 2, "socks": 1}
	if got := b.cart(); !maps.Equal(got, want) {
		t.Fatalf("cart before the restart = %v; want %v", got, want)
	}
	stop()

	// The path may come before other flags too. The cookie jar sends the
	// cookies to the new port: cookies ignore ports.
	addr, stop = startRun(t, "-store", "sqlite", path, "-addr", "127.0.0.1:0")
	defer stop()
	b.base = "http://" + addr
	if got := b.cart(); !maps.Equal(got, want) {
		t.Fatalf("cart after the restart = %v; want %v", got, want)
	}
	b.add("tee", 1) // the session is writable, and the CSRF token still passes
	want["tee"] = 1
	if got := b.cart(); !maps.Equal(got, want) {
		t.Fatalf("cart after adding = %v; want %v", got, want)
	}
}

func TestRunRejectsBadSQLiteFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-store", "sqlite"}, "-store sqlite needs the database file: -store sqlite PATH"},
		{[]string{"-store", "sqlite", filepath.Join(dir, "no", "such", "dir", "shop.db")}, "-store sqlite: sqlitedb: open "},
		{[]string{"-store", "sqlite", filepath.Join(dir, "shop.db"), "extra"}, "unexpected arguments"},
		{[]string{"-store", "sqlite", filepath.Join(dir, "shop.db"), "-nosuchflag"}, "-nosuchflag"},
		{[]string{"-store", "memory", filepath.Join(dir, "shop.db")}, "unexpected arguments"},
	} {
		err := run(context.Background(), tc.args, noEnv, io.Discard, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %q: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
