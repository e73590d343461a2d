package bench

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// adds is how many cart adds the lost-update check sends at once.
const adds = 40

// TestLostUpdates sends 40 concurrent POST /cart/add requests, each with
// a different item, on one session, then reads the cart back and reports
// how many of the 40 items it kept. It asserts 40/40 for ginsession only:
// the others are last-writer-wins by design, and are reported.
func TestLostUpdates(t *testing.T) {
	for _, spec := range contenders {
		if spec.noCookie || !spec.serves("cart-add") {
			continue
		}
		t.Run(spec.name, func(t *testing.T) {
			ct := spec.get(t)
			cookie := send(t, ct, "POST", "/cart/add?item=seed", "")
			if cookie == "" {
				t.Fatal("the first cart add sent no session cookie")
			}
			var wg sync.WaitGroup
			codes := make([]int, adds)
			ready := make(chan struct{})
			for i := range adds {
				wg.Go(func() {
					req := httptest.NewRequest("POST", "/cart/add?item=item"+strconv.Itoa(i), nil)
					req.Header.Set("Cookie", cookie)
					rec := httptest.NewRecorder()
					<-ready
					ct.h.ServeHTTP(rec, req)
					codes[i] = rec.Code
				})
			}
			close(ready)
			wg.Wait()
			failed := 0
			for _, code := range codes {
				if code >= 400 {
					failed++
				}
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/cart", nil)
			req.Header.Set("Cookie", cookie)
			ct.h.ServeHTTP(rec, req)
			n, err := strconv.Atoi(strings.TrimSpace(rec.Body.String()))
			if rec.Code != http.StatusOK || err != nil {
				t.Fatalf("GET /cart: status %d, body %q", rec.Code, rec.Body.String())
			}
			kept := n - 1 // the seed item
			t.Logf("lost-update impl=%s kept=%d/%d failed-requests=%d", spec.name, kept, adds, failed)
			if spec.noLost && (kept != adds || failed != 0) {
				t.Errorf("kept %d of %d concurrent cart adds (%d requests failed); want all", kept, adds, failed)
			}
		})
	}
}

// send makes one request with the given cookie ("name=value" or "") and
// returns the session cookie the response sets, or the one it was given.
func send(t *testing.T, ct *contender, method, path, cookie string) string {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	ct.h.ServeHTTP(rec, req)
	if rec.Code >= 400 {
		t.Fatalf("%s %s: status %d", method, path, rec.Code)
	}
	for _, line := range rec.Header()["Set-Cookie"] {
		nv, _, _ := strings.Cut(line, ";")
		if strings.HasPrefix(nv, cookieName+"=") {
			cookie = nv
		}
	}
	return cookie
}
