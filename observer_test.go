package ginsession

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// recorder is an Observer that writes down what it is told, and marks the
// contexts it returns so the test can see the store got them.
type recorder struct {
	mu     sync.Mutex
	events []string
}

type markKey struct{}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.events, " ")
	r.events = nil
	return s
}

func (r *recorder) StartLoad(ctx context.Context) (context.Context, func(LoadInfo)) {
	return context.WithValue(ctx, markKey{}, "load"), func(i LoadInfo) {
		if i.Session != DefaultCookieName {
			r.add("load without the cookie's name")
		}
		r.add(fmt.Sprintf("load:%v:%v:%s", i.Outcome, i.Bytes > 0, ErrorKind(i.Err)))
	}
}

func (r *recorder) StartCommit(ctx context.Context) (context.Context, func(CommitInfo)) {
	return context.WithValue(ctx, markKey{}, "commit"), func(i CommitInfo) {
		if i.Session != DefaultCookieName {
			r.add("commit without the cookie's name")
		}
		r.add(fmt.Sprintf("commit:%v:%v:%d:%s", i.Outcome, i.Bytes > 0, i.Conflicts, ErrorKind(i.Err)))
	}
}

// ctxChecker fails a store call whose context does not carry the mark of
// the Observer for that kind of call.
type ctxChecker struct {
	store.Store
	t *testing.T
}

func (c ctxChecker) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if ctx.Value(markKey{}) != "load" && ctx.Value(markKey{}) != "commit" { // a commit reloads after a conflict
		c.t.Error("Load did not get the Observer's context")
	}
	return c.Store.Load(ctx, key, ttl)
}

func (c ctxChecker) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if ctx.Value(markKey{}) != "commit" {
		c.t.Error("Save did not get the Observer's context")
	}
	return c.Store.Save(ctx, key, data, version, ttl)
}

// TestObserver checks what an Observer is told: one event per store load
// and per commit that reaches the store, with the right outcome, and
// nothing for requests that do not reach the store.
func TestObserver(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	st := &echoing{Store: memstore.New()}
	fl := &flaky{Store: ctxChecker{Store: st, t: t}}
	a := newApp(t, Options{Store: fl, Observer: rec, MaxSize: 300})
	br := newBrowser(t, a)
	steps := []struct {
		do   func()
		want string
	}{
		{func() { br.do("GET", "/none") }, ""},
		{func() { br.do("GET", "/get") }, ""}, // no cookie: nothing to load
		{func() { br.do("POST", "/set?v=x") }, "commit:saved:true:0:"},
		{func() { br.do("GET", "/get") }, "load:hit:true:"},
		{func() { br.do("POST", "/set?v=x") }, "load:hit:true:"}, // unchanged: no commit
		{func() { st.armed.Store(1); br.do("POST", "/set?v=y") }, "load:hit:true: commit:saved:true:1:"},
		{func() { fl.failSave.Store(true); br.do("POST", "/set?v=z"); fl.failSave.Store(false) }, "load:hit:true: commit:error:true:0:unavailable"},
		{func() { fl.failLoad.Store(true); br.do("GET", "/get"); fl.failLoad.Store(false) }, "load:error:false:unavailable"},
		{func() { br.do("POST", "/set?v="+strings.Repeat("x", 400)) }, "load:hit:true:"}, // refused at the call
		{func() { br.do("POST", "/destroy") }, "load:hit:true: commit:deleted:false:0:"}, // Destroy loads first
		{func() { br.setCookie(newID()); br.do("GET", "/get") }, "load:miss:false:"},
	}
	for i, step := range steps {
		step.do()
		if got := rec.take(); got != step.want {
			t.Errorf("step %d: observed %q, want %q", i, got, step.want)
		}
	}
	a.drainErrs()

	// A corrupt entry.
	id := newID()
	if _, err := st.Save(context.Background(), a.cfg.prefix+id, []byte{99}, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	br.setCookie(id)
	br.do("GET", "/get")
	if got := rec.take(); got != "load:corrupt:true:corrupt" {
		t.Errorf("corrupt entry: observed %q", got)
	}
}

func TestErrorKind(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		nil:                                 "",
		ErrTooManyConflicts:                 "conflicts",
		fmt.Errorf("x: %w", ErrTooLarge):    "too_large",
		fmt.Errorf("%w: x", ErrCorrupt):     "corrupt",
		fmt.Errorf("%w: x", ErrUnavailable): "unavailable",
		errors.New("other"):                 "other",
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}
