package ginsession

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store/memstore"
)

// TestMaxSize checks that a change that would make the session larger
// than MaxSize fails at the call with ErrTooLarge and changes nothing,
// for Set, Update and AddFlash, and that the flash queue is capped.
func TestMaxSize(t *testing.T) {
	t.Parallel()
	const max = 1000
	st := memstore.New()
	a := newApp(t, Options{Store: st, MaxSize: max})
	result := func(c *gin.Context, err error) {
		if err != nil {
			c.String(http.StatusOK, "error: %v", err)
			return
		}
		c.String(http.StatusOK, "ok")
	}
	a.POST("/big", func(c *gin.Context) {
		result(c, Set(c, c.Query("k"), strings.Repeat("x", len(c.Query("n"))*100)))
	})
	a.POST("/grow", func(c *gin.Context) {
		result(c, Update(c, "k", func(s string) string { return s + strings.Repeat("y", 400) }))
	})
	br := newBrowser(t, a)
	wantBody(t, br.do("POST", "/set?v=small"), 200, "ok")
	before, version, _ := a.raw(t, st, br.cookie())

	for _, path := range []string{"/big?k=k&n=" + strings.Repeat("n", 10), "/big?k=new&n=" + strings.Repeat("n", 10)} {
		rec := br.do("POST", path)
		if !strings.HasPrefix(rec.Body.String(), "error: ") || !strings.Contains(rec.Body.String(), ErrTooLarge.Error()) {
			t.Fatalf("%s: %q, want ErrTooLarge", path, rec.Body.String())
		}
	}
	wantBody(t, br.do("GET", "/get"), 200, "small true")
	wantBody(t, br.do("GET", "/keys"), 200, "k")
	if data, v, _ := a.raw(t, st, br.cookie()); v != version || string(data) != string(before) {
		t.Fatal("a refused change was stored")
	}

	wantBody(t, br.do("POST", "/grow"), 200, "ok") // 405 bytes: fits
	wantBody(t, br.do("POST", "/grow"), 200, "ok") // 805
	if body := br.do("POST", "/grow").Body.String(); !strings.Contains(body, ErrTooLarge.Error()) {
		t.Fatalf("third grow: %q, want ErrTooLarge", body)
	}
	if body := br.do("GET", "/get").Body.String(); body != "small"+strings.Repeat("y", 800)+" true" {
		t.Fatalf("after a refused Update the value is %d bytes", len(body))
	}

	// A fresh session with a large flash queue.
	a2 := newApp(t, Options{Store: memstore.New()})
	a2.POST("/flash-n", func(c *gin.Context) {
		var err error
		n := 0
		for ; n <= MaxFlashes; n++ {
			if err = AddFlash(c, fmt.Sprint(n)); err != nil {
				break
			}
		}
		c.String(http.StatusOK, "%d %v", n, errors.Is(err, ErrTooLarge))
	})
	br2 := newBrowser(t, a2)
	wantBody(t, br2.do("POST", "/flash-n"), 200, fmt.Sprintf("%d true", MaxFlashes))
	got := br2.do("GET", "/flashes").Body.String()
	if n := strings.Count(got, ",") + 1; n != MaxFlashes {
		t.Fatalf("%d flashes kept, want %d", n, MaxFlashes)
	}
}

// TestMaxSizeDefault checks that the default bound lets a session grow to
// DefaultMaxSize and no further.
func TestMaxSizeDefault(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New()})
	a.POST("/fill", func(c *gin.Context) {
		var err error
		i := 0
		for ; err == nil; i++ {
			err = Set(c, fmt.Sprint("k", i), strings.Repeat("v", 1000))
		}
		c.String(http.StatusOK, "%d %v", i-1, errors.Is(err, ErrTooLarge))
	})
	rec := newBrowser(t, a).do("POST", "/fill")
	var n int
	var tooLarge bool
	fmt.Sscanf(rec.Body.String(), "%d %v", &n, &tooLarge)
	if !tooLarge || n < DefaultMaxSize/1020 || n > DefaultMaxSize/1000 {
		t.Fatalf("filled %d values of 1000 bytes before %v, want about %d", n, tooLarge, DefaultMaxSize/1000)
	}
}
