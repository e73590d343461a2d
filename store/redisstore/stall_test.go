//go:build unix

package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/redisstore"
)

// stallPort is the port of the redis-server that TestSaveAfterStall starts
// and freezes: its own, as no shared server may be stopped.
const stallPort = 30107

// redisServer is a redis-server that a test started and owns.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	log  string
}

// startRedisServer starts redis-server on port, without persistence, and
// stops it when t ends. A server that answers on the port already, left
// by an earlier run, is shut down first. Without a redis-server binary the
// test is skipped, or fails under CI=true.
func startRedisServer(t *testing.T, port int, args ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not installed; CI must run this test: %v", err)
		}
		t.Skipf("this test starts its own redis-server, which is not installed: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	shutdownLeftover(addr)

	dir := t.TempDir()
	srv := &redisServer{addr: addr, log: filepath.Join(dir, "redis.log")}
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", srv.log}, args...)
	srv.cmd = exec.Command(bin, args...)
	if err := srv.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.cmd.Process.Signal(syscall.SIGCONT) // in case the test failed while it was stopped
		_ = srv.cmd.Process.Kill()
		_ = srv.cmd.Wait()
	})
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer client.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		// Dial first: a client would log each refused connection.
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			if err = client.Ping(context.Background()).Err(); err == nil {
				return srv
			}
		}
		if time.Now().After(deadline) {
			logText, _ := os.ReadFile(srv.log)
			t.Fatalf("redis-server on %s did not answer: %v\n%s", addr, err, logText)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdownLeftover shuts down the Redis server on addr, if one answers.
func shutdownLeftover(addr string) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return // nothing listens
	}
	_ = conn.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer client.Close()
	ctx := context.Background()
	_ = client.ShutdownNoSave(ctx).Err()
	for range 50 {
		if client.Ping(ctx).Err() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// commandCalls returns how many times the server has run each command
// since its statistics were last reset (INFO commandstats).
func commandCalls(t *testing.T, client *redis.Client) map[string]int {
	t.Helper()
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := make(map[string]int)
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[name], _ = strconv.Atoi(n)
	}
	return calls
}

// wakeOnDial is a go-redis hook that, once armed, resumes a stopped
// redis-server as soon as the client has dialed a new connection to it:
// the connection go-redis opens to send a command again after the reply
// on the first one timed out. The server is kept stopped for at least
// minStop.
type wakeOnDial struct {
	mu      sync.Mutex
	server  *os.Process
	stopped time.Time // zero: not armed
	minStop time.Duration
	woke    bool
}

func (h *wakeOnDial) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err == nil && !h.stopped.IsZero() && !h.woke {
			time.Sleep(time.Until(h.stopped.Add(h.minStop)))
			h.woke = h.server.Signal(syscall.SIGCONT) == nil
		}
		return conn, err
	}
}

func (h *wakeOnDial) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *wakeOnDial) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// awake reports whether the hook has resumed the server.
func (h *wakeOnDial) awake() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.woke
}

// stop stops the server (SIGSTOP) and arms the hook.
func (h *wakeOnDial) stop(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.server.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	h.stopped = time.Now()
}

// TestSaveAfterStall freezes a redis-server (SIGSTOP) while a Save is in
// flight. The reply does not come within the client's ReadTimeout, so
// go-redis sends the command again on a new connection, and the server
// (resumed once that connection is open, after about a second) runs it
// twice: first the original, then the copy, which finds the key already
// holding the version this Save writes. Save must report success with that
// version, not ErrConflict, which would make ginsession apply the
// request's changes a second time (an item added to a cart twice).
func TestSaveAfterStall(t *testing.T) {
	srv := startRedisServer(t, stallPort)
	for _, tc := range []struct {
		name    string
		command string // the one Redis runs twice
		create  bool   // the session exists before the Save
	}{
		{"compare-and-set", "evalsha", true},
		{"first save", "set", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := &wakeOnDial{server: srv.cmd.Process, minStop: time.Second}
			client := redis.NewClient(&redis.Options{
				Addr:        srv.addr,
				ReadTimeout: 200 * time.Millisecond,
				MaxRetries:  3,
				PoolSize:    1, // so the retry dials, which wakes the server
			})
			t.Cleanup(func() { _ = client.Close() })
			client.AddHook(hook)
			ctx := context.Background()
			s := redisstore.New(client, redisstore.WithPrefix(testPrefix(t)))
			key := "cart"
			var version uint64
			if tc.create {
				var err error
				if version, err = s.Save(ctx, key, []byte("one item"), 0, time.Minute); err != nil {
					t.Fatal(err)
				}
				// Put the script in the server's cache, so that each run
				// is one EVALSHA.
				if version, err = s.Save(ctx, key, []byte("one item"), version, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if err := client.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}

			hook.stop(t)
			start := time.Now()
			v, err := s.Save(ctx, key, []byte("two items"), version, time.Minute)
			elapsed := time.Since(start)
			if !hook.awake() {
				t.Fatalf("go-redis did not dial again within %v (Save: %d, %v); the test proves nothing", elapsed, v, err)
			}
			calls := commandCalls(t, client)
			t.Logf("Save took %v with the server stopped for %v or more; the server ran %s %d times",
				elapsed.Round(time.Millisecond), hook.minStop, strings.ToUpper(tc.command), calls[tc.command])
			if calls[tc.command] < 2 {
				t.Fatalf("the server ran %s %d times (%v); the test needs the retry to reach it", tc.command, calls[tc.command], calls)
			}
			if errors.Is(err, store.ErrConflict) {
				t.Fatalf("Save whose command Redis ran twice = ErrConflict; want success: the caller would apply its change again")
			}
			if err != nil {
				t.Fatalf("Save = %v", err)
			}
			data, got, err := s.Load(ctx, key, 0)
			if err != nil || got != v || !bytes.Equal(data, []byte("two items")) {
				t.Fatalf("Load after the Save = %q, %d, %v; want %q, %d", data, got, err, "two items", v)
			}
			// The next compare-and-set goes through as usual.
			if _, err := s.Save(ctx, key, []byte("three items"), v, time.Minute); err != nil {
				t.Fatal(fmt.Errorf("Save after the stall: %w", err))
			}
			_ = s.Delete(ctx, key)
		})
	}
}
