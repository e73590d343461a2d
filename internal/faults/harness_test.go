//go:build faults

// Package faults checks ginsession's guarantees while Redis fails: it runs
// a small cart application with the middleware and redisstore in an
// httptest.Server, puts many simulated users (each with its own cookie jar)
// on it, and kills, freezes and restarts the redis-server processes it
// started itself on loopback. It is built only with the faults tag:
//
//	go test -tags faults -count=1 -v ./internal/faults/
//
// bash .ci/faults.bash runs it as CI does and cleans up any redis-server
// a crashed run left behind. The harness is this file: the Redis process
// (redisServer), the application (app) and the users with their
// statistics (load). The scenarios are in the other files.
package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/redisstore"
)

// The suite's loopback ports: Redis on 30201-30210, the applications on
// 30211-30220. .ci/faults.bash frees them before a run.
const (
	redisPortOutage = 30201
	redisPortFreeze = 30202
	redisPortSoak   = 30203

	appPortOutage = 30211
	appPortFreeze = 30212
	appPortSoak   = 30213
)

// The go-redis defaults that bound what a user waits while Redis is away
// (redis.Options, v9): each command is tried 1+3 times, each try waits up
// to 5 s for a reply (ReadTimeout), with 10 ms to 1 s between tries.
const (
	goRedisReadTimeout = 5 * time.Second
	goRedisMaxRetries  = 3
)

// recoveryGrace is how soon after Redis answers PING again every request
// must succeed.
const recoveryGrace = 2 * time.Second

func init() {
	gin.SetMode(gin.ReleaseMode)
	redis.SetLogger(&redisLog)
}

// redisLog counts go-redis's own log lines (one per failed dial while
// Redis is down) instead of printing them.
var redisLog countingLogger

type countingLogger struct{ n atomic.Int64 }

func (l *countingLogger) Printf(context.Context, string, ...any) { l.n.Add(1) }

// ---------------------------------------------------------------------
// redis-server processes

// redisServer is a redis-server process on a loopback port, with its own
// directory (its AOF, its log, and the pid file .ci/faults.bash uses to
// clean up after a crashed run).
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	frozen bool
}

// startRedis starts redis-server on port with extra configuration and
// waits until it answers PING. The test's cleanup kills it.
func startRedis(t testing.TB, port int, extra ...string) *redisServer {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if ln, err := net.Listen("tcp", addr); err != nil {
		t.Fatalf("port %d is taken (a leftover redis-server? bash .ci/faults.bash stops it): %v", port, err)
	} else {
		_ = ln.Close()
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	r := &redisServer{t: t, port: port, dir: serverDir(t, port)}
	r.args = append([]string{bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"),
		"--daemonize", "no", "--save", "",
	}, extra...)
	t.Cleanup(r.cleanup)
	r.start()
	return r
}

// serverDir returns the directory for the server on port: under
// $GINSESSION_FAULTS_DIR when .ci/faults.bash set it, else a test temp dir.
func serverDir(t testing.TB, port int) string {
	base := os.Getenv("GINSESSION_FAULTS_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, fmt.Sprintf("redis-%d-", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Addr returns host:port.
func (r *redisServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// start starts the process with the same arguments, waits for PING and
// returns when the first PONG came.
func (r *redisServer) start() time.Time {
	r.t.Helper()
	cmd := exec.Command(r.args[0], r.args[1:]...)
	// The server dies with the test binary even if nothing else stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server on port %d: %v", r.port, err)
	}
	pidfile := filepath.Join(r.dir, "redis.pid")
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited, r.frozen = cmd, exited, false
	r.mu.Unlock()
	up, err := r.waitUp(20 * time.Second)
	if err != nil {
		r.t.Fatalf("redis-server on port %d: %v\n%s", r.port, err, r.logTail())
	}
	return up
}

// waitUp waits until the server answers PING and returns when it first did.
func (r *redisServer) waitUp(timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	for {
		if pingOnce(r.Addr()) {
			return time.Now(), nil
		}
		select {
		case <-exited:
			return time.Time{}, errors.New("the process exited")
		default:
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no PONG within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pingOnce sends one PING on a new connection and reports whether PONG came
// back promptly.
func pingOnce(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

func (r *redisServer) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.t.Fatalf("redis-server on port %d is not running", r.port)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v to redis-server on port %d: %v", sig, r.port, err)
	}
	r.frozen = sig == syscall.SIGSTOP
}

// Kill sends SIGKILL and waits for the process to be gone.
func (r *redisServer) Kill() {
	r.t.Helper()
	r.signal(syscall.SIGKILL)
	r.mu.Lock()
	exited := r.exited
	r.cmd = nil
	r.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("redis-server on port %d survived SIGKILL for 10 s", r.port)
	}
}

// Restart starts the killed server again on the same directory (so it
// reads its AOF back) and returns when it first answered PING.
func (r *redisServer) Restart() time.Time {
	r.t.Helper()
	return r.start()
}

// Freeze stops the process (SIGSTOP): connections stay open, the kernel
// still accepts new ones, nothing answers.
func (r *redisServer) Freeze() { r.t.Helper(); r.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (r *redisServer) Thaw() { r.t.Helper(); r.signal(syscall.SIGCONT) }

func (r *redisServer) cleanup() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		r.t.Errorf("redis-server (pid %d) on port %d did not exit", cmd.Process.Pid, r.port)
	}
	_ = os.Remove(filepath.Join(r.dir, "redis.pid"))
}

func (r *redisServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// ---------------------------------------------------------------------
// the application

// The handlers' success bodies. A 503 must never carry one: it would mean
// the handler's answer went out although its session change was not saved.
const (
	addOK   = "ok item=" // + "<item> len=<cart length>"
	clearOK = "ok cleared"
	cartOK  = `{"cart":` // GET /cart answers {"cart":[...]}
)

type cartBody struct {
	Cart []int `json:"cart"`
}

// app is the cart application: gin, the middleware and redisstore with
// go-redis's default options, served on a loopback port.
type app struct {
	URL string
	rdb *redis.Client
	srv *httptest.Server
	tr  *http.Transport // shared by the users; each has its own cookie jar

	panics atomic.Int64
	mu     sync.Mutex
	errs   map[string]int // c.Errors texts (a bounded sample) and their counts
}

func newApp(t testing.TB, redisAddr string, port int) *app {
	t.Helper()
	a := &app{
		// go-redis's default options: what a user sees during an outage
		// is what these give.
		rdb:  redis.NewClient(&redis.Options{Addr: redisAddr}),
		errs: make(map[string]int),
	}
	r := gin.New()
	r.Use(a.recordErrors)
	r.Use(ginsession.New(ginsession.Options{
		Store:     redisstore.New(a.rdb),
		KeyPrefix: "faults:",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	r.POST("/add", func(c *gin.Context) {
		item, err := strconv.Atoi(c.Query("item"))
		if err != nil {
			c.String(http.StatusBadRequest, "bad item")
			return
		}
		if err := ginsession.Update(c, "cart", func(cart []int) []int { return append(cart, item) }); err != nil {
			return // the ErrorHandler has answered
		}
		cart, _ := ginsession.Get[[]int](c, "cart")
		c.String(http.StatusOK, "%s%d len=%d", addOK, item, len(cart))
	})
	r.GET("/cart", func(c *gin.Context) {
		cart, _ := ginsession.Get[[]int](c, "cart")
		if cart == nil {
			cart = []int{}
		}
		c.JSON(http.StatusOK, cartBody{Cart: cart})
	})
	r.POST("/clear", func(c *gin.Context) {
		if err := ginsession.Clear(c); err != nil {
			return
		}
		c.String(http.StatusOK, clearOK)
	})

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("app port %d: %v", port, err)
	}
	a.srv = httptest.NewUnstartedServer(r)
	_ = a.srv.Listener.Close()
	a.srv.Listener = ln
	a.srv.Start()
	a.URL = a.srv.URL
	a.tr = &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	t.Cleanup(func() {
		a.tr.CloseIdleConnections()
		a.srv.CloseClientConnections()
		a.srv.Close()
		_ = a.rdb.Close()
	})
	return a
}

// recordErrors turns a panic into a counted 500 and keeps a sample of the
// errors the middleware put in c.Errors.
func (a *app) recordErrors(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			a.panics.Add(1)
			a.noteErr(fmt.Sprintf("PANIC: %v", v))
			c.AbortWithStatus(http.StatusInternalServerError)
		}
	}()
	c.Next()
	for _, e := range c.Errors {
		a.noteErr(e.Error())
	}
}

func (a *app) noteErr(s string) {
	// Addresses and ports vary from error to error; keep the shape.
	s = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, s)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.errs[s]; ok || len(a.errs) < 20 {
		a.errs[s]++
	}
}

// logErrors logs the c.Errors sample, most frequent first.
func (a *app) logErrors(t testing.TB) {
	a.mu.Lock()
	defer a.mu.Unlock()
	type kv struct {
		s string
		n int
	}
	var all []kv
	for s, n := range a.errs {
		all = append(all, kv{s, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	for _, e := range all {
		t.Logf("  c.Errors ×%d: %s", e.n, e.s)
	}
}

// ---------------------------------------------------------------------
// users and statistics

type opKind uint8

const (
	opAdd opKind = iota
	opGet
	opClear
)

func (o opKind) String() string { return [...]string{"add", "get", "clear"}[o] }

// loadConfig describes the traffic. Every loop is bounded in count and
// in time and stops by itself.
type loadConfig struct {
	users       int
	getShare    float64       // share of GET /cart; the rest are adds and clears
	clearShare  float64       // share of POST /clear
	churn       float64       // chance, per request, that a user leaves and a new one (new cookie jar) arrives
	think       time.Duration // each user pauses up to this long between requests
	maxRequests int           // per user
	maxDuration time.Duration // the load stops by itself after this
}

// phase is what the scenario is doing to Redis.
type phase uint8

const (
	healthy    phase = iota // Redis is up: every request must succeed
	fault                   // from the fault until Redis answers PING again
	recovering              // the recoveryGrace after PING
)

// faultStats describes one fault: the requests in flight at any time
// between the fault and the PING that followed it, and the recovery.
type faultStats struct {
	name       string
	start, up  time.Time      // the fault; the first PONG after it
	inFlight   histogram      // latency of the requests that overlapped [start, up]
	statuses   map[string]int // "add 200": the requests in flight during the fault
	firstOK    time.Duration  // after up: the first 200 of a request started after up
	lastFailed time.Duration  // after up: the start of the last failed request
	failedLate int            // failed requests started after up
}

// load runs the users and collects what they saw.
type load struct {
	t     testing.TB
	app   *app
	cfg   loadConfig
	stop  chan struct{}
	wg    sync.WaitGroup
	users []*user
	began time.Time

	// The phase of each generation; gen counts the scenario's transitions.
	gen    atomic.Int32
	phases [64]phase
	faults [64]*faultStats // by the generation the fault started

	mu          sync.Mutex
	counts      map[string]int // "add 200", "get 503", "add error", ...
	all         histogram
	healthyHist histogram
	acked       int // acknowledged adds
	unacked     int // adds that got no 200
	violations  map[string]int
	examples    []string
	served      int
	body503     int // 503s with a non-empty body
}

// user is one simulated browser: a cookie jar and what it knows of its
// cart. Only its own goroutine touches it.
type user struct {
	id     int
	client *http.Client
	rng    *rand.Rand
	next   int          // the next item number; items are unique per user
	acked  map[int]bool // acknowledged, or seen in a 200 cart: in the cart exactly once
	maybe  map[int]bool // sent but not acknowledged: in the cart at most once
	hadOK  atomic.Bool  // has had one acknowledged add
	visits int          // how many sessions (cookie jars) it has had

	// What went wrong already, so that each item is reported once.
	extra    int          // copies of items beyond the first, last seen
	missing  int          // acknowledged items missing, last seen
	dupSeen  map[int]bool // items seen twice
	lostSeen map[int]bool // acknowledged items found missing
}

func (l *load) newJar(u *user) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	u.client = &http.Client{Transport: l.app.tr, Jar: jar, Timeout: 60 * time.Second}
	u.acked, u.maybe = make(map[int]bool), make(map[int]bool)
	u.dupSeen, u.lostSeen, u.extra, u.missing = make(map[int]bool), make(map[int]bool), 0, 0
	u.visits++
}

// startLoad starts cfg.users users on a.
func startLoad(t testing.TB, a *app, cfg loadConfig) *load {
	l := &load{
		t: t, app: a, cfg: cfg, stop: make(chan struct{}), began: time.Now(),
		counts: make(map[string]int), violations: make(map[string]int),
	}
	for i := range cfg.users {
		u := &user{id: i, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
		l.newJar(u)
		l.users = append(l.users, u)
	}
	deadline := time.Now().Add(cfg.maxDuration)
	for _, u := range l.users {
		l.wg.Go(func() { l.run(u, deadline) })
	}
	t.Cleanup(l.Stop)
	return l
}

// setPhase moves the scenario to p, during fault f (nil when healthy).
func (l *load) setPhase(p phase, f *faultStats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gen.Load() + 1
	if int(g) >= len(l.phases) {
		panic("faults: too many phases")
	}
	l.phases[g], l.faults[g] = p, f
	l.gen.Store(g)
}

// Fault marks the start of a fault; call it just before the signal.
func (l *load) Fault(name string) *faultStats {
	f := &faultStats{name: name, start: time.Now(), statuses: make(map[string]int), firstOK: -1, lastFailed: -1}
	l.setPhase(fault, f)
	return f
}

// Up marks Redis answering PING again at up. It returns recoveryGrace
// after up, from when every request must succeed again.
func (l *load) Up(f *faultStats, up time.Time) {
	l.mu.Lock()
	f.up = up
	l.mu.Unlock()
	l.setPhase(recovering, f)
	time.Sleep(time.Until(up.Add(recoveryGrace)))
	l.setPhase(healthy, nil)
}

// WaitAllActive waits until every user has had an acknowledged add.
func (l *load) WaitAllActive(timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for _, u := range l.users {
			if u.hadOK.Load() {
				n++
			}
		}
		if n == len(l.users) {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("only %d of %d users had an acknowledged add after %v", n, len(l.users), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the load and waits for every user to finish its request.
func (l *load) Stop() {
	select {
	case <-l.stop:
		return
	default:
		close(l.stop)
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		l.t.Fatalf("users still busy 90 s after the load stopped:\n%s", b.String())
	}
}

func (l *load) run(u *user, deadline time.Time) {
	for range l.cfg.maxRequests {
		select {
		case <-l.stop:
			return
		default:
		}
		if time.Now().After(deadline) {
			return
		}
		if u.rng.Float64() < l.cfg.churn {
			l.newJar(u)
		}
		x := u.rng.Float64()
		switch {
		case x < l.cfg.getShare:
			l.get(u)
		case x < l.cfg.getShare+l.cfg.clearShare:
			l.clear(u)
		default:
			l.add(u)
		}
		if l.cfg.think > 0 {
			time.Sleep(time.Duration(u.rng.Int64N(int64(l.cfg.think))))
		}
	}
}

// do sends one request and accounts for its status and latency; the
// caller checks the body.
func (l *load) do(u *user, op opKind, method, path string) (status int, body string) {
	g0 := l.gen.Load()
	start := time.Now()
	req, err := http.NewRequest(method, l.app.URL+path, nil)
	if err != nil {
		panic(err)
	}
	resp, err := u.client.Do(req)
	if err == nil {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		status, body = resp.StatusCode, string(b)
		if rerr != nil {
			status, err = 0, rerr
		}
	}
	end := time.Now()
	g1 := l.gen.Load()
	d := end.Sub(start)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.served++
	l.all.add(d)
	key := fmt.Sprintf("%v %d", op, status)
	if err != nil {
		key = fmt.Sprintf("%v error", op)
	}
	l.counts[key]++
	// Which phases did the request see?
	onlyHealthy := true
	for g := g0; g <= g1; g++ {
		onlyHealthy = onlyHealthy && l.phases[g] == healthy
	}
	if onlyHealthy {
		l.healthyHist.add(d)
	}
	for g := g0; g <= g1; g++ {
		if f := l.faults[g]; f != nil && l.phases[g] == fault {
			f.inFlight.add(d)
			f.statuses[key]++
			break
		}
	}
	if f := l.faults[g0]; f != nil && l.phases[g0] == recovering {
		// Started after Redis answered PING again.
		if status == http.StatusOK {
			if f.firstOK < 0 || end.Sub(f.up) < f.firstOK {
				f.firstOK = end.Sub(f.up)
			}
		} else {
			f.failedLate++
			f.lastFailed = max(f.lastFailed, start.Sub(f.up))
		}
	}

	switch {
	case err != nil:
		l.violateLocked("transport error (a panic, a hang or a dropped connection)", "%v %s: %v after %v", op, path, err, d)
	case status == http.StatusOK:
	case status == http.StatusServiceUnavailable:
		if onlyHealthy {
			l.violateLocked("503 while Redis was healthy", "%v %s: 503 %q", op, path, trim(body))
		}
		if body != "" {
			l.body503++
		}
		if isSuccessBody(op, body) {
			l.violateLocked(fmt.Sprintf("503 carrying the handler's success body (%v)", op), "%v %s: 503 %q", op, path, trim(body))
		}
	default:
		l.violateLocked(fmt.Sprintf("status %d", status), "%v %s: %d %q", op, path, status, trim(body))
	}
	return status, body
}

func isSuccessBody(op opKind, body string) bool {
	switch op {
	case opAdd:
		return strings.HasPrefix(body, addOK)
	case opClear:
		return strings.HasPrefix(body, clearOK)
	default:
		return strings.HasPrefix(body, cartOK)
	}
}

func trim(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func (l *load) violate(kind, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.violateLocked(kind, format, args...)
}

func (l *load) violateLocked(kind, format string, args ...any) {
	l.violations[kind]++
	if l.violations[kind] <= 3 {
		l.examples = append(l.examples, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (l *load) add(u *user) {
	item := u.next
	u.next++
	status, body := l.do(u, opAdd, "POST", fmt.Sprintf("/add?item=%d", item))
	if status != http.StatusOK {
		u.maybe[item] = true
		l.mu.Lock()
		l.unacked++
		l.mu.Unlock()
		return
	}
	var gotItem, n int
	if _, err := fmt.Sscanf(body, addOK+"%d len=%d", &gotItem, &n); err != nil || gotItem != item {
		l.violate("200 with wrong data (add)", "user %d add %d: %q", u.id, item, trim(body))
	} else if lo, hi := len(u.acked)+1+u.extra-u.missing, len(u.acked)+len(u.maybe)+1+u.extra-u.missing; n < lo {
		// Less than was acknowledged: a change was lost. The next read
		// of the cart names it; count it there.
		u.missing += lo - n
	} else if n > hi {
		// More than was added: an item is in the cart twice. The next
		// read of the cart names it; count it there.
		u.extra += n - hi
	}
	delete(u.maybe, item)
	u.acked[item] = true
	u.hadOK.Store(true)
	l.mu.Lock()
	l.acked++
	l.mu.Unlock()
}

func (l *load) clear(u *user) {
	status, body := l.do(u, opClear, "POST", "/clear")
	if status != http.StatusOK {
		// Maybe cleared, maybe not: nothing in the cart is certain.
		for item := range u.acked {
			u.maybe[item] = true
		}
		clear(u.acked)
		return
	}
	if body != clearOK {
		l.violate("200 with wrong data (clear)", "user %d: %q", u.id, trim(body))
	}
	clear(u.acked)
	clear(u.maybe)
	clear(u.dupSeen)
	clear(u.lostSeen)
	u.extra, u.missing = 0, 0
}

func (l *load) get(u *user) {
	status, body := l.do(u, opGet, "GET", "/cart")
	if status == http.StatusOK {
		l.checkCart(u, body, "200 with wrong data (get)")
	}
}

// checkCart checks a 200 cart against what u knows: every acknowledged
// item exactly once, nothing unknown, nothing twice. Items seen are
// acknowledged from then on: a cart never loses what it showed.
func (l *load) checkCart(u *user, body, kind string) (dups, lost int) {
	var cb cartBody
	if err := json.Unmarshal([]byte(body), &cb); err != nil || !strings.HasPrefix(body, cartOK) {
		l.violate(kind, "user %d: %q", u.id, trim(body))
		return 0, 0
	}
	seen := make(map[int]int, len(cb.Cart))
	for _, item := range cb.Cart {
		seen[item]++
	}
	u.extra, u.missing = 0, 0
	for item, n := range seen {
		switch {
		case n > 1:
			dups++
			u.extra += n - 1
			if !u.dupSeen[item] {
				u.dupSeen[item] = true
				l.violate("an item twice in the cart (a change applied twice)", "user %d: item %d ×%d (acknowledged: %v)",
					u.id, item, n, u.acked[item])
			}
		case !u.acked[item] && !u.maybe[item]:
			l.violate("an item nobody added", "user %d: item %d", u.id, item)
		}
	}
	for item := range u.acked {
		if seen[item] == 0 {
			lost++
			u.missing++
			if !u.lostSeen[item] {
				u.lostSeen[item] = true
				l.violate("an acknowledged item missing (a change lost)", "user %d: item %d; cart %v", u.id, item, trim(fmt.Sprint(cb.Cart)))
			}
		}
	}
	for item := range seen {
		if u.maybe[item] {
			delete(u.maybe, item)
			u.acked[item] = true
		}
	}
	return dups, lost
}

// Verify stops the load and reads every user's cart once more (Redis must
// be healthy): each must hold every acknowledged item exactly once.
func (l *load) Verify() (dups, lost int) {
	l.t.Helper()
	l.Stop()
	for _, u := range l.users {
		status, body := l.do(u, opGet, "GET", "/cart")
		if status != http.StatusOK {
			l.violate("final read failed", "user %d: %d %q", u.id, status, trim(body))
			continue
		}
		d, lo := l.checkCart(u, body, "200 with wrong data (get)")
		dups += d
		lost += lo
	}
	return dups, lost
}

// Report logs the figures.
func (l *load) Report() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.t
	keys := make([]string, 0, len(l.counts))
	for k := range l.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, l.counts[k]))
	}
	visits := 0
	for _, u := range l.users {
		visits += u.visits
	}
	t.Logf("requests served: %d in %v by %d users (%d sessions) [%s]",
		l.served, time.Since(l.began).Round(time.Millisecond), len(l.users), visits, strings.Join(parts, ", "))
	t.Logf("acknowledged adds: %d; adds not acknowledged: %d; 503s with a body: %d; panics: %d; go-redis log lines: %d",
		l.acked, l.unacked, l.body503, l.app.panics.Load(), redisLog.n.Load())
	t.Logf("latency, all requests: max %v, p99 %v; while Redis was healthy: max %v, p99 %v",
		l.all.max.Round(time.Millisecond), l.all.quantile(0.99), l.healthyHist.max.Round(time.Millisecond), l.healthyHist.quantile(0.99))
	seen := map[*faultStats]bool{}
	for _, f := range l.faults {
		if f == nil || seen[f] {
			continue
		}
		seen[f] = true
		t.Logf("%s: Redis away for %v; %d requests in flight during it, statuses %v; worst wait %v, p99 %v",
			f.name, f.up.Sub(f.start).Round(time.Millisecond), f.inFlight.n, f.statuses,
			f.inFlight.max.Round(time.Millisecond), f.inFlight.quantile(0.99))
		t.Logf("%s: recovery after PING: first 200 at +%v; %d failed requests started after PING, the last at +%v",
			f.name, roundOrNone(f.firstOK), f.failedLate, roundOrNone(f.lastFailed))
	}
	if len(l.violations) > 0 {
		for _, k := range slices.Sorted(maps.Keys(l.violations)) {
			t.Logf("VIOLATION ×%d: %s", l.violations[k], k)
		}
		for _, e := range l.examples {
			t.Logf("  e.g. %s", e)
		}
	}
	l.app.logErrors(t)
}

func roundOrNone(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Millisecond).String()
}

// Violations returns the count for each kind of broken guarantee.
func (l *load) Violations() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.violations)
}

// AssertNoViolations fails the test once per kind of broken guarantee.
func (l *load) AssertNoViolations() {
	l.t.Helper()
	for kind, n := range l.Violations() {
		l.t.Errorf("%d× %s", n, kind)
	}
	if n := l.app.panics.Load(); n > 0 {
		l.t.Errorf("%d handler panics", n)
	}
}

// AssertRecovered checks f: requests succeeded again within
// recoveryGrace of PING, and nobody waited past bound during the fault.
func (l *load) AssertRecovered(f *faultStats, bound time.Duration) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if f.up.IsZero() {
		l.t.Errorf("%s: Redis never came back", f.name)
		return
	}
	if f.firstOK < 0 || f.firstOK > recoveryGrace {
		l.t.Errorf("%s: no request succeeded within %v of PING (first 200 at +%v)", f.name, recoveryGrace, roundOrNone(f.firstOK))
	}
	adds := 0
	for k, n := range f.statuses {
		if strings.HasPrefix(k, "add ") {
			adds += n
		}
	}
	if adds == 0 {
		l.t.Errorf("%s: no add was in flight during the fault: the scenario tested nothing", f.name)
	}
	if f.inFlight.max > bound {
		l.t.Errorf("%s: a request waited %v during the fault, more than the bound %v", f.name, f.inFlight.max, bound)
	}
}

// ---------------------------------------------------------------------
// latency histogram

// histogram counts durations in buckets 10% apart from 10 µs, in constant
// memory.
type histogram struct {
	n       int
	max     time.Duration
	buckets [220]int
}

const histBase = 10 * time.Microsecond

var histStep = math.Log(1.1)

func (h *histogram) add(d time.Duration) {
	h.n++
	h.max = max(h.max, d)
	i := 0
	if d > histBase {
		i = int(math.Log(float64(d)/float64(histBase)) / histStep)
	}
	h.buckets[min(max(i, 0), len(h.buckets)-1)]++
}

// quantile returns an upper bound of the q-quantile, within 10%.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := int(math.Ceil(q * float64(h.n)))
	cum := 0
	for i, c := range h.buckets {
		cum += c
		if cum >= want {
			up := time.Duration(float64(histBase) * math.Exp(float64(i+1)*histStep))
			return min(up, h.max).Round(time.Millisecond)
		}
	}
	return h.max.Round(time.Millisecond)
}

// ---------------------------------------------------------------------
// process-wide figures

// goroutinesSettle closes idle connections and waits, at most within,
// until at most limit goroutines remain. It returns the last count.
func (a *app) goroutinesSettle(limit int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		a.tr.CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// heapInUse returns HeapInuse after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func goroutineDump() string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}
