package ginsession

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// TestDefaultLifetimes checks the default bounds: a session unused for 14
// days ends, and one used every day ends 30 days after it began.
func TestDefaultLifetimes(t *testing.T) {
	t.Parallel()
	st := &ttlRecorder{Store: memstore.New()}
	a := newApp(t, Options{Store: st})
	now := time.Now()
	var mu sync.Mutex
	a.cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	br := newBrowser(t, a)
	rec := br.do("POST", "/set?v=x")
	if c := sessionCookie(rec); c == nil || c.MaxAge != int(DefaultLifetime/time.Second) {
		t.Fatalf("new session's cookie %v, want Max-Age of 14 days", c)
	}
	if got := st.lastSaveTTL(); got != DefaultLifetime {
		t.Fatalf("saved for %v, want %v", got, DefaultLifetime)
	}
	id := br.cookie()
	for day := 1; day < 30; day++ { // used every day
		advance(24 * time.Hour)
		wantBody(t, br.do("GET", "/get"), 200, "x true")
	}
	advance(24*time.Hour - time.Second) // 30 days less a second
	rec = br.do("GET", "/get")
	wantBody(t, rec, 200, "x true")
	if c := sessionCookie(rec); c == nil || c.MaxAge != 1 {
		t.Fatalf("cookie near the absolute end %v, want Max-Age 1", c)
	}
	advance(time.Second)
	br.setCookie(id)
	wantBody(t, br.do("GET", "/get"), 200, " false")
	if _, _, err := a.raw(t, st, id); err == nil {
		t.Fatal("the session outlived the default absolute timeout")
	}

	// NoAbsoluteTimeout: used every day, it lives on.
	b := newApp(t, Options{Store: memstore.New(), AbsoluteTimeout: NoAbsoluteTimeout})
	b.cfg.now = a.cfg.now
	br = newBrowser(t, b)
	br.do("POST", "/set?v=y")
	for range 60 {
		advance(24 * time.Hour)
		wantBody(t, br.do("GET", "/get"), 200, "y true")
	}
}

// ttlRecorder records the ttl of every Load and Save.
type ttlRecorder struct {
	store.Store
	mu           sync.Mutex
	loads, saves []time.Duration
}

func (r *ttlRecorder) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	r.mu.Lock()
	r.loads = append(r.loads, ttl)
	r.mu.Unlock()
	return r.Store.Load(ctx, key, ttl)
}

func (r *ttlRecorder) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	r.mu.Lock()
	r.saves = append(r.saves, ttl)
	r.mu.Unlock()
	return r.Store.Save(ctx, key, data, version, ttl)
}

func (r *ttlRecorder) lastSaveTTL() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saves[len(r.saves)-1]
}

func (r *ttlRecorder) lastLoadTTL() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loads[len(r.loads)-1]
}

// TestRenewOnWriteOnly checks the switch for rolling expiry: a request
// that only reads sends no cookie and leaves the stored expiry alone (on
// every backend, where the TTL is measured), and a change renews both.
func TestRenewOnWriteOnly(t *testing.T) {
	t.Parallel()
	forEachBackend(t, true, func(t *testing.T, b backend) {
		rec := &ttlRecorder{Store: b.store}
		a := newApp(t, Options{Store: rec, Lifetime: time.Hour, RenewOnWriteOnly: true})
		br := newBrowser(t, a)
		if c := sessionCookie(br.do("POST", "/set?v=x")); c == nil || c.MaxAge != 3600 {
			t.Fatalf("first write's cookie %v", c)
		}
		key := a.cfg.prefix + br.cookie()
		if b.mr != nil {
			b.mr.FastForward(10 * time.Minute)
		}
		got := br.do("GET", "/get")
		wantBody(t, got, 200, "x true")
		if c := sessionCookie(got); c != nil {
			t.Fatalf("a read sent %v", c)
		}
		if ttl := rec.lastLoadTTL(); ttl != 0 {
			t.Fatalf("a read renewed the entry for %v", ttl)
		}
		if b.mr != nil {
			if ttl := b.mr.TTL(key); ttl != 50*time.Minute {
				t.Fatalf("after a read the entry lives %v more, want 50m", ttl)
			}
		}
		if c := sessionCookie(br.do("POST", "/set?v=y")); c == nil || c.MaxAge != 3600 {
			t.Fatalf("a change sent cookie %v, want one renewed to an hour", c)
		}
		if b.mr != nil {
			if ttl := b.mr.TTL(key); ttl != time.Hour {
				t.Fatalf("after a change the entry lives %v more, want 1h", ttl)
			}
		}

		// The default renews on every read.
		d := newApp(t, Options{Store: rec, Lifetime: time.Hour})
		br = newBrowser(t, d)
		br.do("POST", "/set?v=x")
		if c := sessionCookie(br.do("GET", "/get")); c == nil || rec.lastLoadTTL() != time.Hour {
			t.Fatalf("default read: cookie %v, load ttl %v", c, rec.lastLoadTTL())
		}
	})
}
