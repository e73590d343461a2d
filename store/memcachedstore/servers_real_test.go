//go:build unix

package memcachedstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memcachedstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// The tests in this file run memcached servers of their own, besides the
// one GINSESSION_MEMCACHED_ADDR names, on ports 21212 to 21219 of
// 127.0.0.1, and stop them by pid when they end. They run where the tests
// against the real server run, with the memcached binary that
// .ci/memcached.bash installs.

const firstPort, lastPort = 21212, 21219

var ports struct {
	mu    sync.Mutex
	taken map[int]bool // by a test of this process
}

// A memcachedProcess is a memcached that a test started.
type memcachedProcess struct {
	t    *testing.T
	bin  string
	port int
	addr string

	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
	log *bytes.Buffer
}

// memcachedBinary returns the memcached program; without it the test is
// skipped, or fails under CI=true.
func memcachedBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("memcached"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/bin/memcached"); err == nil {
		return "/usr/bin/memcached"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("memcached is not installed (.ci/memcached.bash installs it)")
	}
	t.Skip("memcached is not installed; these tests start servers of their own")
	return ""
}

// startMemcached starts a memcached on the first free port from firstPort
// to lastPort, and stops it when the test ends.
func startMemcached(t *testing.T) *memcachedProcess {
	t.Helper()
	serverAddr(t) // the same condition as every real-server test
	bin := memcachedBinary(t)
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.taken == nil {
		ports.taken = map[int]bool{}
	}
	for port := firstPort; port <= lastPort; port++ {
		if ports.taken[port] || !portFree(port) {
			continue
		}
		p := &memcachedProcess{t: t, bin: bin, port: port, addr: "127.0.0.1:" + strconv.Itoa(port)}
		if err := p.start(); err != nil {
			t.Logf("port %d: %v", port, err)
			continue
		}
		ports.taken[port] = true
		t.Cleanup(func() {
			p.stop(syscall.SIGKILL)
			ports.mu.Lock()
			delete(ports.taken, port)
			ports.mu.Unlock()
		})
		return p
	}
	t.Fatalf("no free port from %d to %d for memcached", firstPort, lastPort)
	return nil
}

// portFree reports whether nothing listens on port.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// start runs memcached on p.port and waits until it answers, as the
// process it started.
func (p *memcachedProcess) start() error {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "0", "-m", "64", "-I", "1m"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without it
	}
	cmd := exec.Command(p.bin, args...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	for range 100 {
		select {
		case <-exited:
			return fmt.Errorf("memcached exited: %s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if pid, err := memcachedPid(p.addr); err == nil {
			if pid != cmd.Process.Pid {
				_ = cmd.Process.Kill()
				<-exited
				return fmt.Errorf("another memcached (pid %d) answers on the port", pid)
			}
			p.mu.Lock()
			p.cmd, p.log = cmd, log
			p.mu.Unlock()
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("memcached did not answer within 2 s: %s", log)
}

// memcachedPid asks the memcached at addr for its pid.
func memcachedPid(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("stats\r\nquit\r\n")); err != nil {
		return 0, err
	}
	var out bytes.Buffer
	_, _ = out.ReadFrom(c)
	for line := range strings.SplitSeq(out.String(), "\r\n") {
		if rest, ok := strings.CutPrefix(line, "STAT pid "); ok {
			return strconv.Atoi(rest)
		}
	}
	return 0, fmt.Errorf("no pid in the stats of %s", addr)
}

// stop sends sig to the server, by its pid, and waits for it to exit.
func (p *memcachedProcess) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	// start's goroutine reaps it; wait for the port to close.
	for range 200 {
		if _, err := net.DialTimeout("tcp", p.addr, 100*time.Millisecond); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Errorf("memcached on %s still answers after signal %v", p.addr, sig)
}

// signal sends sig to the running server.
func (p *memcachedProcess) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// threeServers returns the server of GINSESSION_MEMCACHED_ADDR and two
// that the test starts.
func threeServers(t *testing.T) (addrs []string, own []*memcachedProcess) {
	t.Helper()
	addrs = []string{serverAddr(t)}
	for range 2 {
		p := startMemcached(t)
		own = append(own, p)
		addrs = append(addrs, p.addr)
	}
	return addrs, own
}

func TestConformanceServers(t *testing.T) {
	addrs, _ := threeServers(t)
	s := newServers(t, addrs)
	storetest.Run(t, func(t *testing.T) store.Store { return s }, storetest.WithExpirySlack(time.Second))
}

// TestServersPlacementOnRealServers saves 3000 sessions through a Store
// on three servers, and then asks each server on its own which it holds:
// each session must be on exactly one, the one ServerFor names, and each
// server must hold 20% to 46% of them.
func TestServersPlacementOnRealServers(t *testing.T) {
	t.Parallel()
	addrs, _ := threeServers(t)
	prefix := testPrefix(t)
	s := newServers(t, addrs, memcachedstore.WithPrefix(prefix))
	single := map[string]*memcachedstore.Store{}
	for _, a := range addrs {
		single[a] = newStore(t, a, memcachedstore.WithPrefix(prefix))
	}
	keys := sessionKeys(3000)
	ctx := context.Background()
	t.Cleanup(func() {
		for _, k := range keys {
			_ = s.Delete(ctx, k)
		}
	})
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(keys); i += 8 {
				k := keys[i]
				if _, err := s.Save(ctx, k, []byte(k), 0, time.Minute); err != nil {
					t.Errorf("Save: %v", err)
					return
				}
				var on []string
				for _, a := range addrs {
					_, _, err := single[a].Load(ctx, k, 0)
					switch {
					case err == nil:
						on = append(on, a)
					case !errors.Is(err, store.ErrNotFound):
						t.Errorf("Load from %s: %v", a, err)
						return
					}
				}
				if want := memcachedstore.ServerFor(s, k); len(on) != 1 || on[0] != want {
					t.Errorf("key %d is on %q; want it on %s only", i, on, want)
					return
				}
				mu.Lock()
				count[on[0]]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var shares []string
	for _, a := range addrs {
		share := float64(count[a]) / float64(len(keys))
		shares = append(shares, fmt.Sprintf("%s %d (%.1f%%)", a, count[a], 100*share))
		if share < 0.20 || share > 0.46 {
			t.Errorf("%s holds %d of %d sessions; want 20%% to 46%%", a, count[a], len(keys))
		}
	}
	t.Logf("%d sessions: %s", len(keys), strings.Join(shares, ", "))
}

// TestServerFailure kills one of three servers with SIGKILL, checks that
// the sessions of the other two keep working while it is down, and that
// the dead server's sessions fail with an error rather than move or read
// as absent; then restarts it, and finally stops it with SIGSTOP, so that
// its operations hang until their timeout while the others go on.
func TestServerFailure(t *testing.T) {
	t.Parallel()
	addrs, own := threeServers(t)
	victim := own[1]
	prefix := testPrefix(t)
	const timeout = 2 * time.Second
	s := newServers(t, addrs, memcachedstore.WithPrefix(prefix), memcachedstore.WithTimeout(timeout), memcachedstore.WithMaxConns(4))
	ctx := context.Background()
	keys := sessionKeys(300)
	t.Cleanup(func() {
		for _, k := range keys {
			_ = s.Delete(ctx, k)
		}
	})
	versions := map[string]uint64{}
	onVictim := map[string]bool{}
	for _, k := range keys {
		v, err := s.Save(ctx, k, []byte("one"), 0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		versions[k] = v
		onVictim[k] = memcachedstore.ServerFor(s, k) == victim.addr
	}
	if n := countTrue(onVictim); n == 0 || n == len(keys) {
		t.Fatalf("%d of %d keys on %s; want some", n, len(keys), victim.addr)
	}

	// Phase 1: killed. Every key of the live servers loads and saves; every
	// key of the dead one fails, with neither ErrNotFound nor ErrConflict,
	// which ginsession would read as "absent" or "retry".
	victim.stop(syscall.SIGKILL)
	failed := 0
	for _, k := range keys {
		data, v, err := s.Load(ctx, k, time.Minute)
		if onVictim[k] {
			if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				t.Fatalf("Load of a key on the killed server = %q, %v; want a network error", data, err)
			}
			if _, err := s.Save(ctx, k, []byte("two"), versions[k], time.Minute); err == nil || errors.Is(err, store.ErrConflict) {
				t.Fatalf("Save of a key on the killed server = %v; want a network error", err)
			}
			failed++
			continue
		}
		if err != nil || string(data) != "one" || v != versions[k] {
			t.Fatalf("Load of a key on a live server = %q, %d, %v; want one, %d", data, v, err, versions[k])
		}
		if versions[k], err = s.Save(ctx, k, []byte("two"), v, time.Minute); err != nil {
			t.Fatalf("Save of a key on a live server while another is down: %v", err)
		}
	}
	t.Logf("server %s killed: %d of %d sessions unavailable, the others loaded and saved", victim.addr, failed, len(keys))

	// Phase 2: restarted, empty. Its keys are gone (memcached keeps
	// nothing across a restart) and can be created again; the others kept
	// what phase 1 saved, so nothing moved while the server was down.
	if err := victim.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	for _, k := range keys {
		data, v, err := s.Load(ctx, k, 0)
		if onVictim[k] {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Load of a key on the restarted server = %q, %v; want ErrNotFound", data, err)
			}
			if versions[k], err = s.Save(ctx, k, []byte("two"), 0, time.Minute); err != nil {
				t.Fatalf("Save on the restarted server: %v", err)
			}
			continue
		}
		if err != nil || string(data) != "two" || v != versions[k] {
			t.Fatalf("Load after the restart = %q, %d, %v; want two, %d", data, v, err, versions[k])
		}
	}

	// Phase 3: hung (SIGSTOP). The kernel still accepts connections, so
	// its operations wait for their timeout, holding its connections; the
	// other servers' operations, on pools of their own, finish meanwhile.
	victim.signal(syscall.SIGSTOP)
	defer victim.signal(syscall.SIGCONT)
	var hung, hungDone atomic.Int32
	var wg sync.WaitGroup
	for _, k := range keys {
		if !onVictim[k] {
			continue
		}
		if hung.Add(1) > 8 { // twice WithMaxConns: some wait for a connection
			break
		}
		wg.Go(func() {
			defer hungDone.Add(1)
			if _, _, err := s.Load(ctx, k, 0); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("Load from the stopped server = %v; want a timeout", err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // let them take the connections
	start := time.Now()
	for _, k := range keys {
		if onVictim[k] {
			continue
		}
		if _, _, err := s.Load(ctx, k, time.Minute); err != nil {
			t.Fatalf("Load from a live server while another hangs: %v", err)
		}
	}
	elapsed := time.Since(start)
	if n := hungDone.Load(); n != 0 {
		t.Errorf("%d operations on the stopped server ended before the live servers' (%v); want them still waiting", n, elapsed)
	}
	wg.Wait()
	t.Logf("server %s stopped: %d sessions of the live servers loaded in %v while its operations waited %v", victim.addr, len(keys)-failed, elapsed, timeout)
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, b := range m {
		if b {
			n++
		}
	}
	return n
}
