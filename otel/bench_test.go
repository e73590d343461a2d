package ginsessionotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ginsession/ginsession"
	ginsessionotel "github.com/ginsession/ginsession/otel"
	"github.com/ginsession/ginsession/store/memstore"
)

// BenchmarkRequest measures what the Observer adds to a request that
// reads its session (one load) and to one that changes it (a load and a
// commit), over the in-process memstore, which makes the Observer's share
// as large as it gets: no Observer, one on no-op providers (what New
// costs where no SDK is set up), and one on the SDK, sampling every span
// into a batching processor and aggregating every measurement.
func BenchmarkRequest(b *testing.B) {
	observers := []struct {
		name string
		mk   func(b *testing.B) ginsession.Observer
	}{
		{"none", func(*testing.B) ginsession.Observer { return nil }},
		{"noop", func(*testing.B) ginsession.Observer {
			return ginsessionotel.New(ginsessionotel.WithTracerProvider(tracenoop.NewTracerProvider()),
				ginsessionotel.WithMeterProvider(metricnoop.NewMeterProvider()), ginsessionotel.WithStoreName("memory"))
		}},
		{"sdk", func(b *testing.B) ginsession.Observer {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				tp.Shutdown(context.Background())
				mp.Shutdown(context.Background())
			})
			return ginsessionotel.New(ginsessionotel.WithTracerProvider(tp), ginsessionotel.WithMeterProvider(mp),
				ginsessionotel.WithStoreName("memory"))
		}},
	}
	for _, obs := range observers {
		for _, kind := range []struct{ method, path string }{{"GET", "/read"}, {"POST", "/write"}} {
			b.Run("observer="+obs.name+"/request="+kind.path[1:], func(b *testing.B) {
				r := gin.New()
				r.Use(ginsession.New(ginsession.Options{Store: memstore.New(), Observer: obs.mk(b), Logger: quiet}))
				r.GET("/read", func(c *gin.Context) {
					n, _ := ginsession.Get[int](c, "n")
					c.String(http.StatusOK, strconv.Itoa(n))
				})
				r.POST("/write", func(c *gin.Context) {
					ginsession.Update(c, "n", func(n int) int { return n + 1 })
					c.Status(http.StatusNoContent)
				})
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, httptest.NewRequest("POST", "/write", nil))
				req := httptest.NewRequest(kind.method, kind.path, nil)
				req.AddCookie(rec.Result().Cookies()[0])
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					r.ServeHTTP(w, req)
					if w.code >= 300 {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		}
	}
}

// discardExporter drops the spans it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// discardWriter is a reusable http.ResponseWriter that keeps only the
// status, so the benchmark measures the middleware, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
