package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// run serves the shop with the given flags, logs one line per request and
// stops cleanly when its context ends (as on SIGINT or SIGTERM).
func TestRunServesAndShutsDown(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		env := map[string]string{"SHOP_SECRET": strings.Repeat("s", 32)}
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-store", "memory", "-secure"}, func(k string) string { return env[k] },
			io.Discard, log, func(addr string) { addrs <- addr })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not start")
	}
	resp, err := http.Get("http://" + addr + "/cart")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /cart: %d", resp.StatusCode)
	}
	// -secure: the CSRF cookie is a __Host- cookie (this test speaks
	// plain HTTP, so its client would not send it back).
	if sc := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "__Host-csrf=") || !strings.Contains(sc, "; Secure") {
		t.Errorf("with -secure the CSRF cookie is %q, want a Secure __Host-csrf cookie", sc)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	out := logs.String()
	for _, want := range []string{
		"Gopher Goods is open",
		"msg=request method=GET path=/cart status=200 duration=",
		"msg=stopped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-store", "disk"}, nil, `-store "disk": want memory, redis or null`},
		{[]string{"-store", "redis"}, nil, "-store redis needs -redis URL or REDIS_URL"},
		{[]string{"-redis", "http://example.com"}, nil, "-redis:"},
		{nil, map[string]string{"REDIS_URL": "mysql://nope"}, "-redis:"}, // REDIS_URL selects Redis too
		{[]string{"extra"}, nil, "unexpected arguments"},
		{[]string{"-addr", "256.0.0.1:1"}, nil, "256.0.0.1"},
		{nil, map[string]string{"SHOP_SECRET": "31 bytes, one short of enough.."}, "SHOP_SECRET: the secret must be at least 32 bytes"},
	}
	for _, tc := range cases {
		getenv := func(k string) string { return tc.env[k] }
		err := run(context.Background(), tc.args, getenv, io.Discard, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %q (environment %q): %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
		if secret := tc.env["SHOP_SECRET"]; secret != "" && err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestRunReportsAnUnreachableRedis(t *testing.T) {
	// Port 1 on loopback refuses connections. The password must not be
	// echoed back.
	err := run(context.Background(), []string{"-redis", "redis://:secret@127.0.0.1:1/3"}, noEnv, io.Discard,
		slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "cannot reach Redis at 127.0.0.1:1 (db 3)") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestLogRequests(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := logRequests(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/brew?x=1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if out := logs.String(); !strings.Contains(out, "method=POST path=/brew status=418 duration=") {
		t.Errorf("log line: %s", out)
	}
}
