package bench

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A route is one kind of request, the same for every contender.
type route struct {
	name   string
	method string
	path   string
	items  bool // cycle ?item= through a few products
	fresh  bool // a visitor without a cookie: every request starts a session
}

var routes = []route{
	{name: "none", method: "GET", path: "/none"},
	{name: "read", method: "GET", path: "/read"},
	{name: "write", method: "POST", path: "/write"},
	{name: "first-write", method: "POST", path: "/write", fresh: true},
	{name: "cart-add", method: "POST", path: "/cart/add", items: true},
	{name: "cart", method: "GET", path: "/cart"},
	{name: "login", method: "POST", path: "/login"},
}

// clients is how many concurrent clients the parallel benchmarks run, each
// with a session of its own.
const clients = 16

// BenchmarkSerial runs one client's requests one after another: the cost
// of a request without contention.
func BenchmarkSerial(b *testing.B) { benchRoutes(b, false) }

// BenchmarkParallel runs 16 clients at once, each with its own session, as
// many users of one server would.
func BenchmarkParallel(b *testing.B) { benchRoutes(b, true) }

func benchRoutes(b *testing.B, parallel bool) {
	for _, rt := range routes {
		b.Run("route="+rt.name, func(b *testing.B) {
			for _, spec := range contenders {
				if !spec.serves(rt.name) {
					continue
				}
				b.Run("impl="+spec.name, func(b *testing.B) {
					ct := spec.get(b)
					if parallel {
						benchParallel(b, ct, rt)
					} else {
						benchSerial(b, ct, rt)
					}
				})
			}
		})
	}
}

func benchSerial(b *testing.B, ct *contender, rt route) {
	cl := newClient(b, ct, rt)
	start, cpu := ct.tripCount(), cpuTime()
	b.ReportAllocs()
	for b.Loop() {
		if code := cl.do(); code == 0 || code >= 400 {
			b.Fatalf("%s %s: status %d", rt.method, rt.path, code)
		}
	}
	report(b, ct.tripCount()-start, cpuTime()-cpu)
}

func benchParallel(b *testing.B, ct *contender, rt route) {
	procs := runtime.GOMAXPROCS(0)
	par := (clients + procs - 1) / procs
	cls := make([]*client, par*procs)
	for i := range cls {
		cls[i] = newClient(b, ct, rt)
	}
	var next atomic.Int64
	var failed atomic.Bool
	start, cpu := ct.tripCount(), cpuTime()
	b.ReportAllocs()
	b.SetParallelism(par)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cl := cls[next.Add(1)-1]
		for pb.Next() {
			if code := cl.do(); (code == 0 || code >= 400) && !failed.Swap(true) {
				b.Errorf("%s %s: status %d", rt.method, rt.path, code)
			}
		}
	})
	b.StopTimer()
	report(b, ct.tripCount()-start, cpuTime()-cpu)
}

// report adds the store round trips and the CPU time per request to the
// benchmark's results. CPU time is the whole process's (user and system,
// garbage collector included, Redis excluded): on a machine shared with
// other work it varies much less than the wall time.
func report(b *testing.B, trips int64, cpu time.Duration) {
	b.ReportMetric(float64(trips)/float64(b.N), "trips/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A client sends one route's requests with its own session cookie,
// following Set-Cookie as a browser would. It reuses its requests and
// response writer, so that what a benchmark counts is the server's work.
type client struct {
	h       http.Handler
	reqs    []*http.Request // cycled through; they share hdr
	hdr     http.Header
	i       int
	scratch http.Request // a fresh copy per request: some libraries write to it
	w       discardWriter
	follow  bool
	cookie  string // "session=value" as last sent back
}

var products = []string{"apple", "bread", "cheese", "dates", "eggs", "flour", "grapes", "honey"}

func newClient(tb testing.TB, ct *contender, rt route) *client {
	tb.Helper()
	cl := &client{h: ct.h, hdr: http.Header{}, w: discardWriter{h: http.Header{}}, follow: !rt.fresh}
	paths := []string{rt.path}
	if rt.items {
		paths = paths[:0]
		for _, p := range products {
			paths = append(paths, rt.path+"?item="+p)
		}
	}
	for _, p := range paths {
		req := httptest.NewRequest(rt.method, p, nil)
		req.Header = cl.hdr
		cl.reqs = append(cl.reqs, req)
	}
	if !rt.fresh && ct.trips != nil {
		// Start a session holding a counter and a cart, as the
		// benchmarked requests expect.
		for _, setup := range []*http.Request{
			httptest.NewRequest("POST", "/write", nil),
			httptest.NewRequest("POST", "/cart/add?item=apple", nil),
		} {
			setup.Header = cl.hdr.Clone()
			rec := httptest.NewRecorder()
			ct.h.ServeHTTP(rec, setup)
			if rec.Code >= 400 && rec.Code != http.StatusNotImplemented {
				tb.Fatalf("%s: setting up a session: %s %s: status %d", ct.name, setup.Method, setup.URL, rec.Code)
			}
			for _, line := range rec.Header()["Set-Cookie"] {
				cl.take(line)
			}
		}
		if cl.cookie == "" {
			tb.Fatalf("%s: setting up a session sent no cookie", ct.name)
		}
	}
	return cl
}

// do sends the next request and returns the response status.
func (cl *client) do() int {
	cl.scratch = *cl.reqs[cl.i]
	if cl.i++; cl.i == len(cl.reqs) {
		cl.i = 0
	}
	clear(cl.w.h)
	cl.w.code = 0
	cl.h.ServeHTTP(&cl.w, &cl.scratch)
	if cl.follow {
		for _, line := range cl.w.h["Set-Cookie"] {
			cl.take(line)
		}
	}
	return cl.w.code
}

// take adopts the session cookie a Set-Cookie line carries, if any.
func (cl *client) take(line string) {
	nv, _, _ := strings.Cut(line, ";")
	name, value, ok := strings.Cut(nv, "=")
	if !ok || name != cookieName || nv == cl.cookie {
		return
	}
	if value == "" {
		cl.cookie = ""
		delete(cl.hdr, "Cookie")
		return
	}
	cl.cookie = nv
	if v := cl.hdr["Cookie"]; len(v) == 1 {
		v[0] = nv // in place: no allocation on the measured path
		return
	}
	cl.hdr["Cookie"] = []string{nv}
}

// discardWriter is a reusable http.ResponseWriter that keeps only the
// headers and the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
