package ginsession

import (
	"context"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// echoing is a store whose next armed Saves are applied and then answered
// ErrConflict, as when a store client times out, sends the write again,
// and the second copy loses to the first. Real faults that do this are in
// internal/faults and store/redisstore; this one is for fast tests.
type echoing struct {
	store.Store
	armed atomic.Int32
}

func (e *echoing) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	v, err := e.Store.Save(ctx, key, data, version, ttl)
	if err == nil && e.armed.Add(-1) >= 0 {
		return 0, store.ErrConflict
	}
	return v, err
}

// TestAppliedWriteNotReplayed checks that a commit whose write was applied
// although the store reported a conflict does not apply its changes again:
// an item added once is in the cart once.
func TestAppliedWriteNotReplayed(t *testing.T) {
	t.Parallel()
	st := &echoing{Store: memstore.New()}
	a := newApp(t, Options{Store: st})
	var runs atomic.Int32
	a.POST("/count", func(c *gin.Context) {
		Update(c, "n", func(n int) int { runs.Add(1); return n + 1 })
		c.Status(http.StatusNoContent)
	})
	br := newBrowser(t, a)

	// The first write of a new session.
	st.armed.Store(1)
	if rec := br.do("POST", "/add?item=a"); rec.Code != http.StatusNoContent || br.cookie() == "" {
		t.Fatalf("first write: status %d, cookie %q", rec.Code, br.cookie())
	}
	wantBody(t, br.do("GET", "/cart"), 200, "a")

	// A compare-and-set, then one whose conflict is real as well.
	for _, item := range []string{"b", "c"} {
		st.armed.Store(1)
		if rec := br.do("POST", "/add?item="+item); rec.Code != http.StatusNoContent {
			t.Fatalf("add %s: status %d", item, rec.Code)
		}
	}
	wantBody(t, br.do("GET", "/cart"), 200, "a,b,c")
	br.do("POST", "/count")
	st.armed.Store(1)
	br.do("POST", "/count")
	if rec := br.do("GET", "/get?k=n"); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if got := runs.Load(); got != 2 {
		t.Fatalf("Update function ran %d times for 2 requests", got)
	}
	if errs := a.drainErrs(); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
}

// TestMarksKeptAcrossCommits checks that a payload keeps the marks of the
// last maxMarks commits, and that a commit recognises its own mark behind
// other requests' commits.
func TestMarksKeptAcrossCommits(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := newApp(t, Options{Store: st})
	br := newBrowser(t, a)
	for i := range 2 * maxMarks {
		br.do("POST", "/add?item="+string(rune('a'+i)))
		data, _, err := a.raw(t, st, br.cookie())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(payloadMarks(data))/markLen, min(i+1, maxMarks); got != want {
			t.Fatalf("after %d commits: %d marks, want %d", i+1, got, want)
		}
	}

	// A request whose write was applied, followed by maxMarks-1 other
	// commits before it reloads, still finds its mark.
	other := &echoing{Store: st}
	var once sync.Once
	hook := &commitHook{Store: other, after: func() {
		once.Do(func() {
			for range maxMarks - 1 {
				br.do("POST", "/add?item=x")
			}
		})
	}}
	c := newApp(t, Options{Store: hook, KeyPrefix: a.cfg.prefix})
	c.POST("/late", func(c *gin.Context) {
		Update(c, "cart", func(cart []string) []string { return append(cart, "late") })
		c.Status(http.StatusNoContent)
	})
	other.armed.Store(1)
	late := newBrowser(t, c)
	late.setCookie(br.cookie())
	late.do("POST", "/late")
	cart := br.do("GET", "/cart").Body.String()
	if n := strings.Count(cart, "late"); n != 1 {
		t.Fatalf("cart %q has %d late items, want 1", cart, n)
	}
}

// commitHook runs after once a Save returns.
type commitHook struct {
	store.Store
	after func()
}

func (h *commitHook) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	v, err := h.Store.Save(ctx, key, data, version, ttl)
	h.after()
	return v, err
}

// TestPayloadV1Read checks that sessions written in format 1 (no marks,
// creation time in whole seconds) still load, keep their absolute
// timeout, and are rewritten in format 2 when they change.
func TestPayloadV1Read(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	a := newApp(t, Options{Store: st, AbsoluteTimeout: time.Hour})
	now := time.Now()
	var mu sync.Mutex
	a.cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	value, _ := Msgpack.Marshal("old")
	v1 := []byte{payloadV1}
	v1 = binary.AppendVarint(v1, now.Add(-59*time.Minute).Unix())
	v1 = binary.AppendUvarint(v1, 1)
	v1 = appendBytes(v1, "k")
	v1 = appendBytes(v1, value)
	id := newID()
	if _, err := st.Save(context.Background(), a.cfg.prefix+id, v1, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, a)
	br.setCookie(id)
	wantBody(t, br.do("GET", "/get"), 200, "old true")
	br.do("POST", "/set?k=k2&v=new")
	data, _, err := a.raw(t, st, id)
	if err != nil || data[0] != payloadV2 {
		t.Fatalf("rewritten payload %x, %v", data, err)
	}
	created, _, err := decodePayload(data)
	if err != nil || created != now.Add(-59*time.Minute).Unix()*int64(time.Second) {
		t.Fatalf("created %d, %v", created, err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	wantBody(t, br.do("GET", "/get"), 200, " false")
}

// TestAbsoluteTimeoutSubSecond checks that the absolute timeout counts
// from the exact creation time: a 2 s timeout used to end a session
// created at x.9 s after 1.1 s.
func TestAbsoluteTimeoutSubSecond(t *testing.T) {
	t.Parallel()
	a := newApp(t, Options{Store: memstore.New(), AbsoluteTimeout: 2 * time.Second})
	now := time.Unix(time.Now().Unix(), 900_000_000)
	var mu sync.Mutex
	a.cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	br := newBrowser(t, a)
	br.do("POST", "/set?v=x")
	advance(1100 * time.Millisecond)
	wantBody(t, br.do("GET", "/get"), 200, "x true")
	advance(899 * time.Millisecond)
	wantBody(t, br.do("GET", "/get"), 200, "x true")
	advance(time.Millisecond)
	wantBody(t, br.do("GET", "/get"), 200, " false")
}
