package ginsession

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// TestFailedCommitSendsOnlyErrorResponse checks that when a commit fails
// before the response starts, the client gets the ErrorHandler's response
// and none of what the handler writes afterwards, however it writes it.
func TestFailedCommitSendsOnlyErrorResponse(t *testing.T) {
	t.Parallel()
	writers := map[string]gin.HandlerFunc{
		"String": func(c *gin.Context) { c.String(http.StatusOK, "ok 2") },
		"JSON":   func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": 2}) },
		"Data":   func(c *gin.Context) { c.Data(http.StatusOK, "text/plain", []byte("ok 2")) },
		"Write": func(c *gin.Context) {
			if _, err := c.Writer.Write([]byte("ok 2")); err != nil {
				c.Error(err)
			}
		},
		"WriteString": func(c *gin.Context) {
			c.Writer.WriteHeader(http.StatusCreated)
			if _, err := c.Writer.WriteString("ok 2"); !errors.Is(err, ErrResponseReplaced) {
				c.Error(errors.New("WriteString did not report the discarded write"))
			}
		},
		"Redirect": func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/done") },
	}
	// Headers the handler set before the failure (Redirect's Location)
	// are not taken back: they cannot be told apart from those of the
	// middlewares in front, such as CORS.
	handlers := map[string]struct {
		handler func(*gin.Context, error)
		code    int
		body    string
	}{
		"default": {nil, http.StatusServiceUnavailable, ""},
		"custom JSON": {func(c *gin.Context, err error) {
			c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "try again"})
		}, http.StatusServiceUnavailable, `{"error":"try again"}`},
	}
	for wname, write := range writers {
		for hname, h := range handlers {
			t.Run(wname+"/"+hname, func(t *testing.T) {
				t.Parallel()
				st := &flaky{Store: memstore.New()}
				a := newApp(t, Options{Store: st, ErrorHandler: h.handler})
				a.POST("/w", func(c *gin.Context) {
					Set(c, "k", "v2")
					write(c)
				})
				br := newBrowser(t, a)
				br.do("POST", "/set?v=v1")
				st.failSave.Store(true)
				rec := br.do("POST", "/w")
				if rec.Code != h.code || rec.Body.String() != h.body {
					t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), h.code, h.body)
				}
				for _, err := range a.drainErrs() {
					if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrResponseReplaced) {
						t.Fatalf("unexpected error %v", err)
					}
				}
				st.failSave.Store(false)
				wantBody(t, br.do("GET", "/get"), 200, "v1 true")
			})
		}
	}

	// An ErrorHandler that writes nothing leaves the response to the
	// handler, which then knows from c.Errors what happened.
	t.Run("silent handler", func(t *testing.T) {
		t.Parallel()
		st := &flaky{Store: memstore.New()}
		a := newApp(t, Options{Store: st, ErrorHandler: func(*gin.Context, error) {}})
		br := newBrowser(t, a)
		br.do("POST", "/set?v=v1")
		st.failSave.Store(true)
		wantBody(t, br.do("POST", "/set?v=v2"), 200, "ok")
	})
}

// TestFailedLoadSendsOnlyErrorResponse checks the same after a failed
// load: the handler that ignores Set's error does not get its body out.
func TestFailedLoadSendsOnlyErrorResponse(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: memstore.New()}
	a := newApp(t, Options{Store: st})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=v1")
	st.failLoad.Store(true)
	rec := br.do("POST", "/set?v=v2")
	if rec.Code != http.StatusServiceUnavailable || rec.Body.Len() != 0 {
		t.Fatalf("got %d %q, want 503 and no body", rec.Code, rec.Body.String())
	}
	st.failLoad.Store(false)
	wantBody(t, br.do("GET", "/get"), 200, "v1 true")

	// Lookup leaves the response to the handler: nothing is discarded.
	a.GET("/lookup", func(c *gin.Context) {
		if _, _, err := Lookup[string](c, "k"); err != nil {
			c.String(http.StatusOK, "degraded")
		}
	})
	st.failLoad.Store(true)
	req := httptest.NewRequest("GET", "/lookup", nil)
	req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: br.cookie()})
	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	wantBody(t, rec, 200, "degraded")
}

// hangingLoad is a store whose Load waits for its context to end.
type hangingLoad struct{ store.Store }

func (hangingLoad) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

// TestStoreTimeoutBoundsLoad checks that StoreTimeout bounds the load as
// well as the commit: a store that hangs costs a 503 after the timeout.
func TestStoreTimeoutBoundsLoad(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := newApp(t, Options{Store: st})
	br := newBrowser(t, a)
	br.do("POST", "/set?v=x")
	hung := newApp(t, Options{Store: hangingLoad{st}, StoreTimeout: 50 * time.Millisecond, KeyPrefix: a.cfg.prefix})
	hb := newBrowser(t, hung)
	hb.setCookie(br.cookie())
	rec := hb.do("GET", "/get") // without the bound, it would hang until the test times out
	if rec.Code != http.StatusServiceUnavailable || rec.Body.Len() != 0 {
		t.Fatalf("got %d %q, want 503 and no body", rec.Code, rec.Body.String())
	}
	if errs := hung.drainErrs(); len(errs) == 0 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("errors %v, want the deadline", errs)
	}
}
