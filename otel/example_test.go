package ginsessionotel_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ginsession/ginsession"
	ginsessionotel "github.com/ginsession/ginsession/otel"
	"github.com/ginsession/ginsession/store/memstore"
)

// The Observer reports to the global TracerProvider and MeterProvider,
// those an application sets up with otel.SetTracerProvider and
// otel.SetMeterProvider.
func Example() {
	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{
		Store:    memstore.New(),
		Observer: ginsessionotel.New(ginsessionotel.WithStoreName("memory")),
	}))
	r.POST("/visit", func(c *gin.Context) {
		ginsession.Update(c, "visits", func(n int) int { return n + 1 })
		c.Status(http.StatusNoContent)
	})
}

// Two visits: the first creates the session with one commit; the second
// loads it and commits the change.
func ExampleWithTracerProvider() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{
		Store:    memstore.New(),
		Observer: ginsessionotel.New(ginsessionotel.WithTracerProvider(tp), ginsessionotel.WithStoreName("memory")),
	}))
	r.POST("/visit", func(c *gin.Context) {
		ginsession.Update(c, "visits", func(n int) int { return n + 1 })
		c.Status(http.StatusNoContent)
	})

	var cookie string
	for range 2 {
		req := httptest.NewRequest("POST", "/visit", nil)
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if c := rec.Result().Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value
		}
	}
	for _, s := range spans.Ended() {
		fmt.Print(s.Name())
		for _, kv := range s.Attributes() {
			if kv.Key == "ginsession.load.outcome" || kv.Key == "ginsession.commit.outcome" {
				fmt.Print(" ", kv.Value.String())
			}
		}
		fmt.Println()
	}
	// Output:
	// ginsession.commit saved
	// ginsession.load hit
	// ginsession.commit saved
}
