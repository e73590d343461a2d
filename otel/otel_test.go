package ginsessionotel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ginsession/ginsession"
	ginsessionotel "github.com/ginsession/ginsession/otel"
	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

func init() { gin.SetMode(gin.TestMode) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// telemetry is an SDK TracerProvider and MeterProvider that keep what they
// are given in memory. Metrics are collected as deltas, so each collect
// sees only what happened since the one before.
type telemetry struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{spans: tracetest.NewInMemoryExporter()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans))
	tel.reader = sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(
		func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		tel.tp.Shutdown(context.Background())
		tel.mp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) observer(opts ...ginsessionotel.Option) ginsession.Observer {
	return ginsessionotel.New(append([]ginsessionotel.Option{
		ginsessionotel.WithTracerProvider(tel.tp), ginsessionotel.WithMeterProvider(tel.mp)}, opts...)...)
}

// collect returns the metrics recorded since the last collect.
func (tel *telemetry) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// reset forgets the spans and metrics recorded so far.
func (tel *telemetry) reset(t testing.TB) {
	tel.spans.Reset()
	tel.collect(t)
}

// points renders every data point recorded since the last collect as
// "name{attributes}" for counters and "name{attributes}:count" for
// histograms, with the value or the count.
func (tel *telemetry) points(t testing.TB) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, sm := range tel.collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name+"{"+encode(p.Attributes)+"}"] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[m.Name+"{"+encode(p.Attributes)+"}:count"] += int64(p.Count)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					got[m.Name+"{"+encode(p.Attributes)+"}:count"] += int64(p.Count)
				}
			default:
				t.Errorf("metric %s is a %T", m.Name, m.Data)
			}
		}
	}
	return got
}

func encode(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// renderSpan shows what a test checks of a span: name, kind, attributes
// (a payload size only as "n>0"), status and event names.
func renderSpan(s tracetest.SpanStub) string {
	attrs := make([]attribute.KeyValue, 0, len(s.Attributes))
	for _, kv := range s.Attributes {
		if kv.Key == "ginsession.payload.size" && kv.Value.AsInt64() > 0 {
			kv = kv.Key.String("n>0")
		}
		attrs = append(attrs, kv)
	}
	var events []string
	for _, e := range s.Events {
		events = append(events, e.Name)
	}
	status := s.Status.Code.String()
	if s.Status.Description != "" {
		status += ": " + s.Status.Description
	}
	return fmt.Sprintf("%s %s {%s} %s %v", s.Name, s.SpanKind, encode(attribute.NewSet(attrs...)), status, events)
}

// testStore wraps a memstore with faults a test turns on after it has
// created its session.
type testStore struct {
	store.Store
	armed atomic.Bool
	faults
}

// faults are what a testStore does once armed.
type faults struct {
	loadErr  error // Load fails with it
	saveErr  error // Save fails with it
	garble   bool  // Load returns the payload with its format byte changed
	race     int   // this many conditional Saves first meet a concurrent write
	endFirst bool  // a conditional Save finds the session deleted by another request

	keepLonger bool // Save keeps entries a minute past their TTL, armed or not
}

func (s *testStore) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if !s.armed.Load() {
		return s.Store.Load(ctx, key, ttl)
	}
	if s.loadErr != nil {
		return nil, 0, s.loadErr
	}
	data, v, err := s.Store.Load(ctx, key, ttl)
	if err == nil && s.garble {
		data[0] = 0xEE
	}
	return data, v, err
}

func (s *testStore) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if s.keepLonger {
		ttl += time.Minute
	}
	if !s.armed.Load() {
		return s.Store.Save(ctx, key, data, version, ttl)
	}
	if s.saveErr != nil {
		return 0, s.saveErr
	}
	if version != 0 && s.race > 0 {
		s.race--
		cur, v, err := s.Store.Load(ctx, key, 0)
		if err != nil {
			return 0, err
		}
		if _, err := s.Store.Save(ctx, key, cur, v, ttl); err != nil {
			return 0, err
		}
	}
	if version != 0 && s.endFirst {
		if err := s.Store.Delete(ctx, key); err != nil {
			return 0, err
		}
	}
	return s.Store.Save(ctx, key, data, version, ttl)
}

// app is a gin router with the middleware and a few routes.
type app struct {
	r          *gin.Engine
	cookie     string // the session cookie, "name=value", once there is one
	requestIDs []trace.SpanContext
}

// newApp returns an app observed by obs. If tp is not nil, a middleware
// in front of ginsession starts a "request" span for every request, as an
// HTTP server instrumentation would.
func newApp(tp trace.TracerProvider, o ginsession.Options) *app {
	a := &app{r: gin.New()}
	if tp != nil {
		tracer := tp.Tracer("test")
		a.r.Use(func(c *gin.Context) {
			ctx, span := tracer.Start(c.Request.Context(), "request", trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			a.requestIDs = append(a.requestIDs, span.SpanContext())
			c.Request = c.Request.WithContext(ctx)
			c.Next()
		})
	}
	o.Logger = quiet
	o.ErrorHandler = func(c *gin.Context, err error) {
		if !c.Writer.Written() {
			c.AbortWithStatus(http.StatusServiceUnavailable)
		}
	}
	a.r.Use(ginsession.New(o))
	a.r.GET("/none", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	a.r.GET("/get", func(c *gin.Context) {
		n, _ := ginsession.Get[int](c, "n")
		c.String(http.StatusOK, "%d", n)
	})
	a.r.POST("/add", func(c *gin.Context) {
		ginsession.Update(c, "n", func(n int) int { return n + 1 })
		c.Status(http.StatusNoContent)
	})
	a.r.POST("/destroy", func(c *gin.Context) {
		ginsession.Destroy(c)
		c.Status(http.StatusNoContent)
	})
	return a
}

// do sends a request with the app's session cookie, keeps the cookie it
// gets back, and returns the status.
func (a *app) do(method, path string) int {
	req := httptest.NewRequest(method, path, nil)
	if a.cookie != "" {
		req.Header.Set("Cookie", a.cookie)
	}
	rec := httptest.NewRecorder()
	a.r.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == ginsession.DefaultCookieName && c.MaxAge >= 0 {
			a.cookie = c.Name + "=" + c.Value
		}
	}
	return rec.Code
}

// Expected data points, as telemetry.points renders them, for a store
// named "mem".
func loaded(outcome string) map[string]int64 {
	a := "ginsession.load.outcome=" + outcome + ",ginsession.store.name=mem"
	return map[string]int64{"ginsession.loads{" + a + "}": 1, "ginsession.load.duration{" + a + "}:count": 1}
}

func committed(outcome string) map[string]int64 {
	a := "ginsession.commit.outcome=" + outcome + ",ginsession.store.name=mem"
	return map[string]int64{"ginsession.commits{" + a + "}": 1, "ginsession.commit.duration{" + a + "}:count": 1}
}

func sized(op string) map[string]int64 {
	return map[string]int64{"ginsession.payload.size{ginsession.operation=" + op + ",ginsession.store.name=mem}:count": 1}
}

func failed(op, kind string) map[string]int64 {
	return map[string]int64{"ginsession.errors{error.type=" + kind + ",ginsession.operation=" + op + ",ginsession.store.name=mem}": 1}
}

func conflicts(n int64) map[string]int64 {
	return map[string]int64{"ginsession.commit.conflicts{ginsession.store.name=mem}": n}
}

func union(ms ...map[string]int64) map[string]int64 {
	u := map[string]int64{}
	for _, m := range ms {
		maps.Copy(u, m)
	}
	return u
}

var errDown = errors.New("backend down")

// TestObserver runs each kind of load and commit through a real router
// and checks the spans and the data points it leaves.
func TestObserver(t *testing.T) {
	t.Parallel()
	const (
		load   = "ginsession.load internal {"
		commit = "ginsession.commit internal {"
	)
	tests := []struct {
		name      string
		session   bool // a session exists before the request
		destroyed bool // and was destroyed since: the cookie is stale
		sleep     time.Duration
		faults    faults
		opts      ginsession.Options
		method    string
		path      string
		status    int
		spans     []string
		points    map[string]int64
	}{{
		name:   "untouched",
		method: "GET", path: "/none", status: 204,
		points: map[string]int64{},
	}, {
		name:   "no cookie, read",
		method: "GET", path: "/get", status: 200,
		points: map[string]int64{},
	}, {
		name:   "first write",
		method: "POST", path: "/add", status: 204,
		spans: []string{
			commit + "ginsession.commit.conflicts=0,ginsession.commit.outcome=saved,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
		},
		points: union(committed("saved"), sized("commit")),
	}, {
		name: "read", session: true,
		method: "GET", path: "/get", status: 200,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
		},
		points: union(loaded("hit"), sized("load")),
	}, {
		name: "change", session: true,
		method: "POST", path: "/add", status: 204,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "ginsession.commit.conflicts=0,ginsession.commit.outcome=saved,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
		},
		points: union(loaded("hit"), committed("saved"), map[string]int64{
			"ginsession.payload.size{ginsession.operation=load,ginsession.store.name=mem}:count":   1,
			"ginsession.payload.size{ginsession.operation=commit,ginsession.store.name=mem}:count": 1,
		}),
	}, {
		name: "destroy", session: true, // loads, to know the session's user and cookie, then deletes
		method: "POST", path: "/destroy", status: 204,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "ginsession.commit.conflicts=0,ginsession.commit.outcome=deleted,ginsession.store.name=mem} Unset []",
		},
		points: union(loaded("hit"), sized("load"), committed("deleted")),
	}, {
		name: "stale cookie", session: true, destroyed: true,
		method: "GET", path: "/get", status: 200,
		spans: []string{
			load + "ginsession.load.outcome=miss,ginsession.store.name=mem} Unset []",
		},
		points: loaded("miss"),
	}, {
		name: "absolute timeout", session: true, sleep: 1100 * time.Millisecond,
		faults: faults{keepLonger: true},
		opts:   ginsession.Options{AbsoluteTimeout: time.Second},
		method: "GET", path: "/get", status: 200,
		spans: []string{
			load + "ginsession.load.outcome=expired,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "ginsession.commit.conflicts=0,ginsession.commit.outcome=deleted,ginsession.store.name=mem} Unset []",
		},
		points: union(loaded("expired"), sized("load"), committed("deleted")),
	}, {
		name: "corrupt entry", session: true, faults: faults{garble: true},
		method: "GET", path: "/get", status: 200,
		spans: []string{
			load + "error.type=corrupt,ginsession.load.outcome=corrupt,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset [exception]",
		},
		points: union(loaded("corrupt"), sized("load"), failed("load", "corrupt")),
	}, {
		name: "store down on load", session: true, faults: faults{loadErr: errDown},
		method: "GET", path: "/get", status: 503,
		spans: []string{
			load + "error.type=unavailable,ginsession.load.outcome=error,ginsession.store.name=mem} Error: ginsession: session store unavailable: load: backend down [exception]",
		},
		points: union(loaded("error"), failed("load", "unavailable")),
	}, {
		name: "store down on save", session: true, faults: faults{saveErr: errDown},
		method: "POST", path: "/add", status: 503,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "error.type=unavailable,ginsession.commit.conflicts=0,ginsession.commit.outcome=error,ginsession.payload.size=n>0,ginsession.store.name=mem} Error: ginsession: session store unavailable: save: backend down [exception]",
		},
		points: union(loaded("hit"), committed("error"), failed("commit", "unavailable"), map[string]int64{
			"ginsession.payload.size{ginsession.operation=load,ginsession.store.name=mem}:count":   1,
			"ginsession.payload.size{ginsession.operation=commit,ginsession.store.name=mem}:count": 1,
		}),
	}, {
		name: "conflicts retried", session: true, faults: faults{race: 2},
		method: "POST", path: "/add", status: 204,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "ginsession.commit.conflicts=2,ginsession.commit.outcome=saved,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
		},
		points: union(loaded("hit"), committed("saved"), conflicts(2), map[string]int64{
			"ginsession.payload.size{ginsession.operation=load,ginsession.store.name=mem}:count":   1,
			"ginsession.payload.size{ginsession.operation=commit,ginsession.store.name=mem}:count": 1,
		}),
	}, {
		name: "too many conflicts", session: true, faults: faults{race: 1000},
		opts:   ginsession.Options{CommitAttempts: 3},
		method: "POST", path: "/add", status: 503,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "error.type=conflicts,ginsession.commit.conflicts=3,ginsession.commit.outcome=error,ginsession.payload.size=n>0,ginsession.store.name=mem} Error: ginsession: too many concurrent changes to one session: gave up after 3 attempts [exception]",
		},
		points: union(loaded("hit"), committed("error"), conflicts(3), failed("commit", "conflicts"), map[string]int64{
			"ginsession.payload.size{ginsession.operation=load,ginsession.store.name=mem}:count":   1,
			"ginsession.payload.size{ginsession.operation=commit,ginsession.store.name=mem}:count": 1,
		}),
	}, {
		name: "ended by another request", session: true, faults: faults{endFirst: true},
		method: "POST", path: "/add", status: 204,
		spans: []string{
			load + "ginsession.load.outcome=hit,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
			commit + "ginsession.commit.conflicts=1,ginsession.commit.outcome=dropped,ginsession.payload.size=n>0,ginsession.store.name=mem} Unset []",
		},
		points: union(loaded("hit"), committed("dropped"), conflicts(1), map[string]int64{
			"ginsession.payload.size{ginsession.operation=load,ginsession.store.name=mem}:count":   1,
			"ginsession.payload.size{ginsession.operation=commit,ginsession.store.name=mem}:count": 1,
		}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := newTelemetry(t)
			st := &testStore{Store: memstore.New(), faults: tt.faults}
			opts := tt.opts
			opts.Store = st
			opts.Observer = tel.observer(ginsessionotel.WithStoreName("mem"))
			a := newApp(tel.tp, opts)
			if tt.session {
				if code := a.do("POST", "/add"); code != http.StatusNoContent {
					t.Fatalf("creating the session: %d", code)
				}
			}
			if tt.destroyed {
				cookie := a.cookie
				a.do("POST", "/destroy")
				a.cookie = cookie
			}
			time.Sleep(tt.sleep)
			st.armed.Store(true)
			tel.reset(t)
			a.requestIDs = nil

			if code := a.do(tt.method, tt.path); code != tt.status {
				t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, code, tt.status)
			}
			var got []string
			for _, s := range tel.spans.GetSpans() {
				if s.Name == "request" {
					continue
				}
				got = append(got, renderSpan(s))
				// Every span is a child of the request's.
				if req := a.requestIDs[0]; s.Parent.SpanID() != req.SpanID() || s.SpanContext.TraceID() != req.TraceID() {
					t.Errorf("%s: parent %v in trace %v, want the request's span %v in %v",
						s.Name, s.Parent.SpanID(), s.SpanContext.TraceID(), req.SpanID(), req.TraceID())
				}
			}
			if !slices.Equal(got, tt.spans) {
				t.Errorf("spans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.spans, "\n"))
			}
			if got := tel.points(t); !maps.Equal(got, tt.points) {
				t.Errorf("data points:\n%s\nwant:\n%s", renderPoints(got), renderPoints(tt.points))
			}
		})
	}
}

func renderPoints(m map[string]int64) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lines = append(lines, fmt.Sprintf("  %s = %d", k, m[k]))
	}
	return strings.Join(lines, "\n")
}

// TestSpanContext checks that the store gets a context carrying the span,
// so that a store client's own spans nest beneath it, and that a request
// whose context carries no span gets root spans.
func TestSpanContext(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	var inLoad, inCommit atomic.Value // the span contexts the store saw
	st := &spyStore{Store: memstore.New(), load: &inLoad, save: &inCommit}
	a := newApp(nil, ginsession.Options{Store: st, Observer: tel.observer()})
	a.do("POST", "/add")
	a.do("POST", "/add")

	spans := tel.spans.GetSpans()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
		if s.Parent.IsValid() {
			t.Errorf("%s has parent %v; the request carried no span", s.Name, s.Parent.SpanID())
		}
		if s.Attributes != nil && slices.ContainsFunc(s.Attributes, func(kv attribute.KeyValue) bool { return kv.Key == "ginsession.store.name" }) {
			t.Errorf("%s has a store name though none was set", s.Name)
		}
	}
	if want := []string{"ginsession.commit", "ginsession.load", "ginsession.commit"}; !slices.Equal(names, want) {
		t.Fatalf("spans %q, want %q", names, want)
	}
	if got, want := inLoad.Load(), spans[1].SpanContext.SpanID(); got != want {
		t.Errorf("the store's Load ran in span %v, want the load span %v", got, want)
	}
	if got, want := inCommit.Load(), spans[2].SpanContext.SpanID(); got != want {
		t.Errorf("the store's Save ran in span %v, want the commit span %v", got, want)
	}
}

// spyStore writes down the span each Load and Save ran in.
type spyStore struct {
	store.Store
	load, save *atomic.Value
}

func (s *spyStore) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	s.load.Store(trace.SpanContextFromContext(ctx).SpanID())
	return s.Store.Load(ctx, key, ttl)
}

func (s *spyStore) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	s.save.Store(trace.SpanContextFromContext(ctx).SpanID())
	return s.Store.Save(ctx, key, data, version, ttl)
}

// TestInstruments checks each metric's name, kind and unit.
func TestInstruments(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	st := &testStore{Store: memstore.New(), faults: faults{race: 1}}
	a := newApp(nil, ginsession.Options{Store: st, Observer: tel.observer()})
	a.do("POST", "/add")
	st.armed.Store(true)
	a.do("POST", "/add")
	st.armed.Store(false)
	st.loadErr, st.race = errDown, 0
	st.armed.Store(true)
	a.do("GET", "/get")

	got := map[string]string{}
	for _, sm := range tel.collect(t).ScopeMetrics {
		if sm.Scope.Name != ginsessionotel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, ginsessionotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			kind := fmt.Sprintf("%T", m.Data)
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && s.IsMonotonic {
				kind = "counter"
			}
			got[m.Name] = kind + " " + m.Unit
			if m.Description == "" {
				t.Errorf("%s has no description", m.Name)
			}
		}
	}
	want := map[string]string{
		"ginsession.loads":            "counter {load}",
		"ginsession.commits":          "counter {commit}",
		"ginsession.commit.conflicts": "counter {conflict}",
		"ginsession.errors":           "counter {error}",
		"ginsession.load.duration":    "metricdata.Histogram[float64] s",
		"ginsession.commit.duration":  "metricdata.Histogram[float64] s",
		"ginsession.payload.size":     "metricdata.Histogram[int64] By",
	}
	if !maps.Equal(got, want) {
		t.Errorf("metrics:\n%v\nwant:\n%v", got, want)
	}
}

// TestNoSessionID looks for the session ID, and the cookie that carries
// it, in everything the Observer records, through failures included.
func TestNoSessionID(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	st := &testStore{Store: memstore.New(), faults: faults{race: 1}}
	a := newApp(tel.tp, ginsession.Options{
		Store:       st,
		Observer:    tel.observer(ginsessionotel.WithStoreName("mem")),
		SigningKeys: [][]byte{[]byte(strings.Repeat("k", 32))},
	})
	a.do("POST", "/add")
	_, value, _ := strings.Cut(a.cookie, "=")
	id, _, _ := strings.Cut(value, ".")
	if len(id) < 40 {
		t.Fatalf("session cookie %q", a.cookie)
	}
	st.armed.Store(true)
	a.do("POST", "/add") // a conflict
	st.garble = true
	a.do("GET", "/get") // corrupt
	st.garble, st.loadErr = false, errDown
	a.do("GET", "/get") // store down
	a.do("POST", "/destroy")

	var texts []string
	add := func(kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
	}
	spans := tel.spans.GetSpans()
	for _, s := range spans {
		texts = append(texts, s.Name, s.Status.Description)
		add(s.Attributes)
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			add(e.Attributes)
		}
	}
	for _, sm := range tel.collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			texts = append(texts, m.Name, m.Description)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes.ToSlice())
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes.ToSlice())
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes.ToSlice())
				}
			}
		}
	}
	if len(spans) < 8 || len(texts) < 50 {
		t.Fatalf("only %d spans and %d texts recorded", len(spans), len(texts))
	}
	for _, s := range texts {
		if strings.Contains(s, id) || strings.Contains(s, id[:16]) {
			t.Errorf("the session ID is in %q", s)
		}
	}
}

// TestGlobalProviders checks that New uses the global providers by
// default and when given nil.
func TestGlobalProviders(t *testing.T) {
	// Not parallel: it sets the global providers.
	tel := newTelemetry(t)
	tp, mp := otel.GetTracerProvider(), otel.GetMeterProvider()
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
	})
	obs := []ginsession.Observer{
		ginsessionotel.New(),
		ginsessionotel.New(ginsessionotel.WithTracerProvider(nil), ginsessionotel.WithMeterProvider(nil)),
	}
	for _, o := range obs {
		newApp(nil, ginsession.Options{Observer: o}).do("POST", "/add")
	}
	if n := len(tel.spans.GetSpans()); n != 2 {
		t.Errorf("%d spans, want 2", n)
	}
	if got := tel.points(t); got["ginsession.commits{ginsession.commit.outcome=saved}"] != 2 {
		t.Errorf("data points:\n%s\nwant 2 saved commits", renderPoints(got))
	}
}

// TestSpanStatus checks the status codes one by one, since a status
// description set without the Error code is dropped.
func TestSpanStatus(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	st := &testStore{Store: memstore.New(), faults: faults{loadErr: errDown}}
	a := newApp(nil, ginsession.Options{Store: st, Observer: tel.observer()})
	a.do("POST", "/add")
	st.armed.Store(true)
	a.do("GET", "/get")
	spans := tel.spans.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	if c := spans[0].Status.Code; c != codes.Unset {
		t.Errorf("a saved commit has status %v, want Unset", c)
	}
	s := spans[1]
	if s.Status.Code != codes.Error {
		t.Errorf("a failed load has status %v, want Error", s.Status.Code)
	}
	if len(s.Events) != 1 || s.Events[0].Name != "exception" {
		t.Fatalf("events %v, want one exception", s.Events)
	}
	var msg string
	for _, kv := range s.Events[0].Attributes {
		if kv.Key == "exception.message" {
			msg = kv.Value.AsString()
		}
	}
	if !strings.HasSuffix(msg, ": "+errDown.Error()) {
		t.Errorf("exception.message %q, want the store's error", msg)
	}
}
