package ginsession

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/nullstore"
)

// TestNullStoreRefusesWrites checks sessions switched off with nullstore:
// every change returns ErrSessionsDisabled, reads find nothing, and no
// response ever carries a cookie or Vary: Cookie.
func TestNullStoreRefusesWrites(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: nullstore.New()})
	report := func(c *gin.Context, err error) {
		c.String(http.StatusOK, "%v", errors.Is(err, ErrSessionsDisabled))
	}
	a.POST("/n/set", func(c *gin.Context) { report(c, Set(c, "k", "v")) })
	a.POST("/n/update", func(c *gin.Context) { report(c, Update(c, "k", func(n int) int { return n + 1 })) })
	a.POST("/n/delete", func(c *gin.Context) { report(c, Delete(c, "k")) })
	a.POST("/n/clear", func(c *gin.Context) { report(c, Clear(c)) })
	a.POST("/n/flash", func(c *gin.Context) { report(c, AddFlash(c, "hi")) })
	a.POST("/n/regenerate", func(c *gin.Context) { report(c, Regenerate(c)) })
	a.POST("/n/destroy", func(c *gin.Context) { report(c, Destroy(c)) })
	br := newBrowser(t, a)
	br.setCookie(newID()) // a cookie from the days sessions were on
	for _, path := range []string{"/n/set", "/n/update", "/n/delete", "/n/clear", "/n/flash", "/n/regenerate", "/n/destroy"} {
		rec := br.do("POST", path)
		wantBody(t, rec, 200, "true")
		if h := rec.Header(); h.Get("Set-Cookie") != "" || h.Get("Vary") != "" {
			t.Fatalf("%s sent Set-Cookie %q, Vary %q", path, h.Get("Set-Cookie"), h.Get("Vary"))
		}
	}
	for _, path := range []string{"/get", "/flashes", "/keys"} {
		rec := br.do("GET", path)
		if rec.Code != 200 || rec.Header().Get("Set-Cookie") != "" {
			t.Fatalf("%s: %d, Set-Cookie %q", path, rec.Code, rec.Header().Get("Set-Cookie"))
		}
	}
	wantBody(t, br.do("GET", "/get"), 200, " false")
	if errs := a.drainErrs(); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
}
