package ginsession

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"
)

// BenchmarkRequest measures one request of each kind through gin and the
// middleware, with its store round trips per request:
//
//	go test -run '^$' -bench Request -benchmem
//
// Each parallel goroutine has a session of its own, as many users would.
func BenchmarkRequest(b *testing.B) {
	stores := []struct {
		name string
		mk   func(testing.TB) backend
	}{{"memstore", memBackend}, {"redis", redisBackend}}
	for _, st := range stores {
		be := st.mk(b)
		r := gin.New()
		r.Use(New(Options{Store: be.store, KeyPrefix: testPrefix(b), Logger: quiet}))
		r.GET("/none", func(c *gin.Context) { c.Status(http.StatusNoContent) })
		r.GET("/read", func(c *gin.Context) {
			n, _ := Get[int](c, "n")
			c.String(http.StatusOK, strconv.Itoa(n))
		})
		r.POST("/write", func(c *gin.Context) {
			Update(c, "n", func(n int) int { return n + 1 })
			c.Status(http.StatusNoContent)
		})
		for _, kind := range []struct{ method, path string }{{"GET", "/none"}, {"GET", "/read"}, {"POST", "/write"}} {
			newSession := func() *http.Cookie {
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, httptest.NewRequest("POST", "/write", nil))
				return rec.Result().Cookies()[0]
			}
			run := func(pb interface{ Next() bool }, cookie *http.Cookie) {
				req := httptest.NewRequest(kind.method, kind.path, nil)
				req.AddCookie(cookie)
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					r.ServeHTTP(w, req)
					if w.code >= 300 {
						b.Fatalf("status %d", w.code)
					}
				}
			}
			b.Run(st.name+kind.path, func(b *testing.B) {
				cookie := newSession()
				start := be.trips.Load()
				b.ReportAllocs()
				b.ResetTimer()
				run(loop{b}, cookie)
				b.ReportMetric(float64(be.trips.Load()-start)/float64(b.N), "trips/op")
			})
			b.Run(st.name+kind.path+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) { run(pb, newSession()) })
			})
		}
	}
}

// loop adapts b.Loop to the pb.Next shape.
type loop struct{ b *testing.B }

func (l loop) Next() bool { return l.b.Loop() }

// discardWriter is a reusable http.ResponseWriter that keeps only the
// status, so the benchmark measures the middleware, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
