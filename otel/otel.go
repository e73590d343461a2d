// Package ginsessionotel reports ginsession's session loads and commits to
// OpenTelemetry: a span for each, and metrics of how many there were, what
// they found or did, how long they took and how large the sessions were.
//
// Set it as the middleware's Observer:
//
//	r.Use(ginsession.New(ginsession.Options{
//		Store:    redisstore.New(rdb),
//		Observer: ginsessionotel.New(ginsessionotel.WithStoreName("redis")),
//	}))
//
// Only loads and commits that reach the store are reported: a request
// that never touches its session, or only reads a session it has not got,
// produces nothing. Nothing reported ever carries a session ID.
//
// # Spans
//
// "ginsession.load" and "ginsession.commit", of kind Internal: each is one
// logical operation that may make several store calls (a commit that meets
// a conflict reloads and retries), so a store client's own instrumentation,
// such as go-redis's, shows its calls as Client spans beneath it. The
// parent is the span of the request's context, if any (an HTTP server
// middleware such as otelgin puts one there). Attributes:
//
//	ginsession.store.name        the WithStoreName name, if set
//	ginsession.load.outcome      hit, miss, expired, corrupt or error (load spans)
//	ginsession.commit.outcome    saved, deleted, dropped or error (commit spans)
//	ginsession.payload.size      bytes read or last sent, when there was a payload
//	ginsession.commit.conflicts  compare-and-set conflicts met and retried (commit spans)
//	error.type                   the [ginsession.ErrorKind] of the error, if any
//
// A load or commit that failed (outcome "error") has status Error, with
// the error's message as description and recorded as an exception event.
// A corrupt entry is recorded as an exception event and error.type
// "corrupt", but the status stays unset: the request goes on with a fresh
// session.
//
// # Metrics
//
//	ginsession.loads              counter, {load}: loads by ginsession.load.outcome
//	ginsession.commits            counter, {commit}: commits by ginsession.commit.outcome
//	ginsession.commit.conflicts   counter, {conflict}: conflicts met and retried
//	ginsession.errors             counter, {error}: errors by ginsession.operation
//	                              (load or commit) and error.type
//	ginsession.load.duration      histogram, s: load latency by ginsession.load.outcome
//	ginsession.commit.duration    histogram, s: commit latency by ginsession.commit.outcome
//	ginsession.payload.size       histogram, By: payload sizes by ginsession.operation
//
// Every metric also carries ginsession.store.name when it is set. The
// histograms advise bucket boundaries suited to them (from 50 µs to 20 s,
// and from 64 bytes to 1 MiB); a View can replace them.
package ginsessionotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ginsession/ginsession"
)

// ScopeName is the instrumentation scope of the tracer and the meter this
// package uses, for Views and for telling its telemetry apart.
const ScopeName = "github.com/ginsession/ginsession/otel"

// The names of the spans.
const (
	LoadSpanName   = "ginsession.load"
	CommitSpanName = "ginsession.commit"
)

// Attribute keys.
const (
	storeNameKey     = attribute.Key("ginsession.store.name")
	loadOutcomeKey   = attribute.Key("ginsession.load.outcome")
	commitOutcomeKey = attribute.Key("ginsession.commit.outcome")
	payloadSizeKey   = attribute.Key("ginsession.payload.size")
	conflictsKey     = attribute.Key("ginsession.commit.conflicts")
	operationKey     = attribute.Key("ginsession.operation")
	errorTypeKey     = attribute.Key("error.type") // the semantic conventions' own
)

// Advised histogram bucket boundaries: a store call takes from tens of
// microseconds (in process, or Redis on loopback) to the seconds of a
// store client's timeouts; sessions are bounded by Options.MaxSize, 64 KiB
// by default.
var (
	durationBounds = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
		0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20}
	sizeBounds = []float64{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}
)

// An Option configures the Observer returned by [New].
type Option func(*config)

type config struct {
	tp        trace.TracerProvider
	mp        metric.MeterProvider
	storeName string
}

// WithTracerProvider sets where the spans go. Nil, and the default, mean
// the global TracerProvider (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets where the metrics go. Nil, and the default, mean
// the global MeterProvider (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithStoreName names the store, such as "redis" or "postgres", in the
// ginsession.store.name attribute of every span and metric, so that
// applications with several stores can tell them apart. Empty, the
// default, leaves the attribute out.
func WithStoreName(name string) Option {
	return func(c *config) { c.storeName = name }
}

// The outcomes, indexed by their values; index 0 stands for any value this
// version does not know.
var (
	loadOutcomes = [...]ginsession.LoadOutcome{0, ginsession.LoadHit, ginsession.LoadMiss,
		ginsession.LoadExpired, ginsession.LoadCorrupt, ginsession.LoadError}
	commitOutcomes = [...]ginsession.CommitOutcome{0, ginsession.CommitSaved, ginsession.CommitDeleted,
		ginsession.CommitDropped, ginsession.CommitError}
	// errorKinds are the values of ginsession.ErrorKind.
	errorKinds = [...]string{"conflicts", "too_large", "corrupt", "unavailable", "other"}
)

// observer is the ginsession.Observer that New returns. Every attribute
// set a measurement can carry is built by New, so that recording one
// allocates nothing.
type observer struct {
	tracer      trace.Tracer
	startOpts   []trace.SpanStartOption
	storeAttr   []attribute.KeyValue // empty, or the store name
	loads       metric.Int64Counter
	commits     metric.Int64Counter
	conflicts   metric.Int64Counter
	errors      metric.Int64Counter
	loadTime    metric.Float64Histogram
	commitTime  metric.Float64Histogram
	payloadSize metric.Int64Histogram

	store      attrs                      // the store name alone
	load       [len(loadOutcomes)]attrs   // store name and load outcome
	commit     [len(commitOutcomes)]attrs // store name and commit outcome
	loadErr    [len(errorKinds)]attrs     // store name, "load" and error.type
	commitErr  [len(errorKinds)]attrs     // store name, "commit" and error.type
	loadSize   attrs                      // store name and "load"
	commitSize attrs                      // store name and "commit"
}

// attrs is an attribute set as the options of a measurement, made once.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newAttrs(kv ...attribute.KeyValue) attrs {
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	return attrs{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
}

// New returns an Observer, for ginsession.Options.Observer, that records
// a span for every session load and commit that reaches the store and
// keeps the metrics listed in the package documentation. An instrument
// that cannot be created is reported to the global error handler
// (otel.Handle) and records nothing.
func New(opts ...Option) ginsession.Observer {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	o := &observer{tracer: c.tp.Tracer(ScopeName)}
	if c.storeName != "" {
		o.storeAttr = []attribute.KeyValue{storeNameKey.String(c.storeName)}
	}
	o.startOpts = []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(o.storeAttr...),
	}

	m := c.mp.Meter(ScopeName)
	var err error
	o.loads, err = m.Int64Counter("ginsession.loads", metric.WithUnit("{load}"),
		metric.WithDescription("Session loads from the store, by outcome."))
	handle(err)
	o.commits, err = m.Int64Counter("ginsession.commits", metric.WithUnit("{commit}"),
		metric.WithDescription("Session commits that wrote to or deleted from the store, by outcome."))
	handle(err)
	o.conflicts, err = m.Int64Counter("ginsession.commit.conflicts", metric.WithUnit("{conflict}"),
		metric.WithDescription("Compare-and-set conflicts that commits met and retried."))
	handle(err)
	o.errors, err = m.Int64Counter("ginsession.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed or corrupt session loads and failed commits, by operation and error.type."))
	handle(err)
	o.loadTime, err = m.Float64Histogram("ginsession.load.duration", metric.WithUnit("s"),
		metric.WithDescription("How long session loads took, by outcome."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	handle(err)
	o.commitTime, err = m.Float64Histogram("ginsession.commit.duration", metric.WithUnit("s"),
		metric.WithDescription("How long session commits took, conflicts and retries included, by outcome."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	handle(err)
	o.payloadSize, err = m.Int64Histogram("ginsession.payload.size", metric.WithUnit("By"),
		metric.WithDescription("Sizes of the session payloads read by loads and written by commits."),
		metric.WithExplicitBucketBoundaries(sizeBounds...))
	handle(err)

	with := func(kv ...attribute.KeyValue) attrs { return newAttrs(append(kv, o.storeAttr...)...) }
	o.store = with()
	for i, oc := range loadOutcomes {
		o.load[i] = with(loadOutcomeKey.String(oc.String()))
	}
	for i, oc := range commitOutcomes {
		o.commit[i] = with(commitOutcomeKey.String(oc.String()))
	}
	for i, kind := range errorKinds {
		o.loadErr[i] = with(operationKey.String("load"), errorTypeKey.String(kind))
		o.commitErr[i] = with(operationKey.String("commit"), errorTypeKey.String(kind))
	}
	o.loadSize = with(operationKey.String("load"))
	o.commitSize = with(operationKey.String("commit"))
	return o
}

func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// StartLoad starts a "ginsession.load" span; the function it returns ends
// it and records the load's metrics.
func (o *observer) StartLoad(ctx context.Context) (context.Context, func(ginsession.LoadInfo)) {
	start := time.Now()
	ctx, span := o.tracer.Start(ctx, LoadSpanName, o.startOpts...)
	return ctx, func(info ginsession.LoadInfo) { o.endLoad(ctx, span, start, info) }
}

func (o *observer) endLoad(ctx context.Context, span trace.Span, start time.Time, info ginsession.LoadInfo) {
	elapsed := time.Since(start).Seconds()
	i := 0
	if int(info.Outcome) < len(loadOutcomes) {
		i = int(info.Outcome)
	}
	kind := ginsession.ErrorKind(info.Err)
	if span.IsRecording() {
		kv := [3]attribute.KeyValue{loadOutcomeKey.String(info.Outcome.String())}
		endSpan(span, kv[:1], info.Bytes, info.Err, kind, info.Outcome == ginsession.LoadError)
	}

	o.loads.Add(ctx, 1, o.load[i].add...)
	o.loadTime.Record(ctx, elapsed, o.load[i].rec...)
	if info.Bytes > 0 {
		o.payloadSize.Record(ctx, int64(info.Bytes), o.loadSize.rec...)
	}
	if kind != "" {
		o.errors.Add(ctx, 1, o.errorAttrs(&o.loadErr, "load", kind).add...)
	}
}

// StartCommit starts a "ginsession.commit" span; the function it returns
// ends it and records the commit's metrics.
func (o *observer) StartCommit(ctx context.Context) (context.Context, func(ginsession.CommitInfo)) {
	start := time.Now()
	ctx, span := o.tracer.Start(ctx, CommitSpanName, o.startOpts...)
	return ctx, func(info ginsession.CommitInfo) { o.endCommit(ctx, span, start, info) }
}

func (o *observer) endCommit(ctx context.Context, span trace.Span, start time.Time, info ginsession.CommitInfo) {
	elapsed := time.Since(start).Seconds()
	i := 0
	if int(info.Outcome) < len(commitOutcomes) {
		i = int(info.Outcome)
	}
	kind := ginsession.ErrorKind(info.Err)
	if span.IsRecording() {
		kv := [4]attribute.KeyValue{commitOutcomeKey.String(info.Outcome.String()), conflictsKey.Int(info.Conflicts)}
		endSpan(span, kv[:2], info.Bytes, info.Err, kind, info.Outcome == ginsession.CommitError)
	}

	o.commits.Add(ctx, 1, o.commit[i].add...)
	o.commitTime.Record(ctx, elapsed, o.commit[i].rec...)
	if info.Bytes > 0 {
		o.payloadSize.Record(ctx, int64(info.Bytes), o.commitSize.rec...)
	}
	if info.Conflicts > 0 {
		o.conflicts.Add(ctx, int64(info.Conflicts), o.store.add...)
	}
	if kind != "" {
		o.errors.Add(ctx, 1, o.errorAttrs(&o.commitErr, "commit", kind).add...)
	}
}

// endSpan sets the attributes kv on span, with the payload size and the
// error type if any (kv has room for both), records err, sets the status
// to Error if the operation failed, and ends the span.
func endSpan(span trace.Span, kv []attribute.KeyValue, bytes int, err error, kind string, failed bool) {
	if bytes > 0 {
		kv = append(kv, payloadSizeKey.Int(bytes))
	}
	if err != nil {
		kv = append(kv, errorTypeKey.String(kind))
	}
	span.SetAttributes(kv...)
	if err != nil {
		span.RecordError(err)
		if failed {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// errorAttrs returns the attributes of an error of the given kind in
// operation op, from known when the kind is a known one.
func (o *observer) errorAttrs(known *[len(errorKinds)]attrs, op, kind string) attrs {
	for i, k := range errorKinds {
		if k == kind {
			return known[i]
		}
	}
	return newAttrs(append([]attribute.KeyValue{operationKey.String(op), errorTypeKey.String(kind)}, o.storeAttr...)...)
}
