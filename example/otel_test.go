package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// TestOTelFlag runs the shop with and without -otel, adds to the cart,
// and looks for the session spans and metrics in what it printed.
func TestOTelFlag(t *testing.T) {
	// Not parallel: it replaces otelOutput.
	tests := []struct {
		name string
		args []string
		want []string // in the output; none means no output at all
	}{
		{"default", nil, nil},
		{"-otel", []string{"-otel"}, []string{
			`"ginsession.load"`, `"ginsession.commit"`, // spans
			`"ginsession.loads"`, `"ginsession.commits"`, `"ginsession.commit.duration"`, // metrics
			`"ginsession.store.name"`, `"memory"`, `"gopher-goods"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out syncBuffer
			old := otelOutput
			otelOutput = &out
			t.Cleanup(func() { otelOutput = old })

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addrs := make(chan string, 1)
			done := make(chan error, 1)
			go func() {
				args := append([]string{"-addr", "127.0.0.1:0", "-store", "memory"}, tt.args...)
				done <- run(ctx, args, noEnv, io.Discard, slog.New(slog.DiscardHandler), func(addr string) { addrs <- addr })
			}()
			var addr string
			select {
			case addr = <-addrs:
			case err := <-done:
				t.Fatalf("run returned early: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the server did not start")
			}
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			b := &browser{t: t, base: "http://" + addr, client: &http.Client{
				Jar:           jar,
				Timeout:       20 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}}
			b.get("/")
			b.add("mug", 1)
			if got := b.cart().String(); got != "mug=1" {
				t.Errorf("cart = %s, want mug=1", got)
			}
			session := b.sessionCookie()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return after its context ended")
			}

			got := out.String()
			if len(tt.want) == 0 && got != "" {
				t.Errorf("without -otel the shop printed:\n%.300s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("the output lacks %s:\n%.300s", w, got)
				}
			}
			if session == "" || strings.Contains(got, session[:16]) {
				t.Errorf("the session ID %q (empty: no session) is in the output", session)
			}
		})
	}
}
