package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ginsession/ginsession/store"
)

// Timings of the expiry subtests. An entry saved with shortTTL must be gone
// after expiryWait, which leaves room for stores that count whole seconds.
const (
	shortTTL   = time.Second
	renewAfter = 500 * time.Millisecond
	expiryWait = 2200 * time.Millisecond
	renewedTTL = 5 * time.Second
)

func testLoadMissing(e *env) {
	k := e.key("k")
	e.loadMissing(k, 0)
	e.loadMissing(k, longTTL) // renewing a missing entry must not create it
	e.loadMissing(k, 0)
}

func testSaveCreates(e *env) {
	k := e.key("k")
	v := e.save(k, []byte("hello"), 0, longTTL)
	e.expect(k, []byte("hello"), v)
}

func testCreateExisting(e *env) {
	k := e.key("k")
	v := e.save(k, []byte("first"), 0, longTTL)
	e.saveConflict(k, []byte("second"), 0)
	e.expect(k, []byte("first"), v)
}

func testSaveCurrentVersion(e *env) {
	k := e.key("k")
	v1 := e.save(k, []byte("one"), 0, longTTL)
	v2 := e.save(k, []byte("two"), v1, longTTL)
	e.expect(k, []byte("two"), v2)
	v3 := e.save(k, []byte("three"), v2, longTTL)
	if v3 == v1 {
		e.t.Fatalf("third Save returned the first version %d again", v1)
	}
	e.expect(k, []byte("three"), v3)
}

func testSaveStaleVersion(e *env) {
	k := e.key("k")
	v1 := e.save(k, []byte("one"), 0, longTTL)
	v2 := e.save(k, []byte("two"), v1, longTTL)
	e.saveConflict(k, []byte("stale"), v1)
	e.saveConflict(k, []byte("made up"), v2+1)
	e.expect(k, []byte("two"), v2)
}

func testSaveMissingWithVersion(e *env) {
	k, other := e.key("k"), e.key("other")
	e.saveConflict(k, []byte("x"), 12345)
	e.loadMissing(k, 0)
	// A version that is current for another key means nothing for k.
	v := e.save(other, []byte("other"), 0, longTTL)
	e.saveConflict(k, []byte("x"), v)
	e.loadMissing(k, 0)
}

func testDelete(e *env) {
	k, never := e.key("k"), e.key("never")
	ctx := context.Background()
	v := e.save(k, []byte("x"), 0, longTTL)
	if err := e.s.Delete(ctx, k); err != nil {
		e.t.Fatalf("Delete(%q): %v", k, err)
	}
	e.loadMissing(k, 0)
	if err := e.s.Delete(ctx, k); err != nil {
		e.t.Fatalf("Delete(%q) of a deleted entry: %v", k, err)
	}
	if err := e.s.Delete(ctx, never); err != nil {
		e.t.Fatalf("Delete(%q) of a missing entry: %v", never, err)
	}
	// A writer that loaded before the Delete must not resurrect the entry.
	e.saveConflict(k, []byte("late"), v)
	e.loadMissing(k, 0)
}

func testRecreateAfterDelete(e *env) {
	k := e.key("k")
	var seen []uint64
	remember := func(v uint64) {
		e.t.Helper()
		for _, old := range seen {
			if v == old {
				e.t.Fatalf("version %d handed out twice for %q (versions so far: %v)", v, k, seen)
			}
		}
		seen = append(seen, v)
	}
	for i := range 3 {
		data := fmt.Appendf(nil, "life %d", i)
		v := e.save(k, data, 0, longTTL)
		remember(v)
		for _, old := range seen[:len(seen)-1] {
			e.saveConflict(k, []byte("late"), old)
		}
		e.expect(k, data, v)
		v = e.save(k, append(data, " updated"...), v, longTTL)
		remember(v)
		if err := e.s.Delete(context.Background(), k); err != nil {
			e.t.Fatalf("Delete(%q): %v", k, err)
		}
	}
}

// An expiryCase is one scenario on the shared timeline of testExpiry. start
// runs at once and returns what to do after renewAfter and at expiryWait;
// either may be nil.
type expiryCase struct {
	name  string
	start func(e *env) (atRenew, atEnd func())
}

var expiryCases = []expiryCase{
	{"Expires", expires},
	{"LoadRenews", loadRenews},
	{"LoadWithoutTTLKeeps", loadWithoutTTLKeeps},
	{"SaveSets", saveSets},
}

// testExpiry runs every expiryCase on one timeline, so that the suite waits
// for expiry once, however few subtests run in parallel.
func testExpiry(e *env) {
	var atRenew, atEnd []func()
	for _, c := range expiryCases {
		r, end := c.start(e.sub(c.name))
		atRenew = append(atRenew, r)
		atEnd = append(atEnd, end)
	}
	for _, phase := range []struct {
		after time.Duration
		steps []func()
	}{
		{renewAfter, atRenew},
		{expiryWait - renewAfter + e.slack, atEnd},
	} {
		e.wait(phase.after)
		for _, step := range phase.steps {
			if step != nil {
				step()
			}
		}
	}
}

func expires(e *env) (atRenew, atEnd func()) {
	k := e.key("k")
	v := e.save(k, []byte("x"), 0, shortTTL)
	return nil, func() {
		e.loadMissing(k, 0)
		e.loadMissing(k, longTTL)
		e.saveConflict(k, []byte("late"), v)
		e.loadMissing(k, 0)
		v2 := e.save(k, []byte("new"), 0, longTTL)
		if v2 == v {
			e.t.Fatalf("recreating expired %q reused its version %d", k, v)
		}
		e.expect(k, []byte("new"), v2)
	}
}

func loadRenews(e *env) (atRenew, atEnd func()) {
	k := e.key("k")
	v := e.save(k, []byte("x"), 0, shortTTL)
	return func() {
			data, lv := e.load(k, renewedTTL)
			if string(data) != "x" || lv != v {
				e.t.Fatalf("renewing Load(%q) = %q, version %d; want %q, version %d", k, data, lv, "x", v)
			}
		}, func() {
			e.expect(k, []byte("x"), v)
		}
}

func loadWithoutTTLKeeps(e *env) (atRenew, atEnd func()) {
	k := e.key("k")
	v := e.save(k, []byte("x"), 0, shortTTL)
	return func() {
			e.expect(k, []byte("x"), v)
			if _, _, err := e.s.Load(context.Background(), k, -time.Second); err != nil {
				e.t.Fatalf("Load(%q) with a negative ttl: %v", k, err)
			}
		}, func() {
			e.loadMissing(k, 0)
		}
}

func saveSets(e *env) (atRenew, atEnd func()) {
	longer, shorter := e.key("longer"), e.key("shorter")
	l1 := e.save(longer, []byte("one"), 0, shortTTL)
	s1 := e.save(shorter, []byte("one"), 0, longTTL)
	var l2 uint64
	return func() {
			l2 = e.save(longer, []byte("two"), l1, renewedTTL)
			e.save(shorter, []byte("two"), s1, shortTTL)
		}, func() {
			e.expect(longer, []byte("two"), l2)
			e.loadMissing(shorter, 0)
		}
}

func testSaveCopiesData(e *env) {
	k := e.key("k")
	data := []byte("original")
	v := e.save(k, data, 0, longTTL)
	copy(data, "XXXXXXXX")
	e.expect(k, []byte("original"), v)

	data = []byte("replaced")
	v = e.save(k, data, v, longTTL)
	copy(data, "YYYYYYYY")
	e.expect(k, []byte("replaced"), v)
}

func testLoadReturnsCopy(e *env) {
	k := e.key("k")
	v := e.save(k, []byte("original"), 0, longTTL)
	for _, ttl := range []time.Duration{0, longTTL} {
		data, _ := e.load(k, ttl)
		for i := range data {
			data[i] = 'X'
		}
		e.expect(k, []byte("original"), v)
	}
}

func testBinaryPayloads(e *env) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := make([]byte, 256<<10)
	if _, err := rand.Read(large); err != nil {
		e.t.Fatal(err)
	}
	payloads := []struct {
		name string
		data []byte
	}{
		{"all-bytes", all},
		{"empty", []byte{}},
		{"nil", nil},
		{"large", large},
	}
	for i, p := range payloads {
		k := e.key(p.name)
		v := e.save(k, p.data, 0, longTTL)
		e.expect(k, p.data, v)
		// Replace it through the versioned path with the next payload.
		next := payloads[(i+1)%len(payloads)].data
		v = e.save(k, next, v, longTTL)
		e.expect(k, next, v)
	}
}

func testKeysIndependent(e *env) {
	keys := []string{e.key("one:session"), e.key("two:session"), e.key("one:session:x"), e.key("one:sessio")}
	versions := make([]uint64, len(keys))
	for i, k := range keys {
		versions[i] = e.save(k, []byte(k), 0, longTTL)
	}
	versions[0] = e.save(keys[0], []byte("changed"), versions[0], longTTL)
	if err := e.s.Delete(context.Background(), keys[1]); err != nil {
		e.t.Fatalf("Delete(%q): %v", keys[1], err)
	}
	e.expect(keys[0], []byte("changed"), versions[0])
	e.loadMissing(keys[1], 0)
	for i, k := range keys[2:] {
		e.expect(k, []byte(k), versions[i+2])
	}
}

func testCanceledContext(e *env) {
	k, fresh := e.key("k"), e.key("fresh")
	v := e.save(k, []byte("x"), 0, longTTL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		e.t.Helper()
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			e.t.Errorf("%s with a canceled context returned %v; want an error that is neither ErrNotFound nor ErrConflict", op, err)
		} else if !errors.Is(err, context.Canceled) {
			e.t.Errorf("%s with a canceled context returned %v, which does not wrap context.Canceled", op, err)
		}
	}
	_, _, err := e.s.Load(ctx, k, 0)
	check("Load", err)
	_, _, err = e.s.Load(ctx, k, longTTL)
	check("renewing Load", err)
	_, _, err = e.s.Load(ctx, fresh, 0)
	check("Load of a missing entry", err)
	_, err = e.s.Save(ctx, k, []byte("y"), v, longTTL)
	check("Save", err)
	_, err = e.s.Save(ctx, fresh, []byte("y"), 0, longTTL)
	check("creating Save", err)
	check("Delete", e.s.Delete(ctx, k))
}

func testConcurrentCompareAndSet(e *env) {
	const writers = 20
	k := e.key("counter")
	ctx := context.Background()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			if _, err := Increment(ctx, e.s, k, longTTL); err != nil {
				e.t.Error(err)
			}
		})
	}
	wg.Wait()
	data, _ := e.load(k, 0)
	if string(data) != strconv.Itoa(writers) {
		e.t.Fatalf("counter = %q after %d concurrent increments; want %d", data, writers, writers)
	}
}

// testConcurrentAppend is what a user's session index does: many writers
// each add their own item to one list by compare-and-set, starting from no
// entry, and none is lost. Keys have the shape ginsession gives them
// (a prefix with colons, then 43 base64url characters).
func testConcurrentAppend(e *env) {
	const writers = 20
	k := e.key("user:" + strings.Repeat("A-_z", 10) + "xyz")
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			item := fmt.Sprintf("session-%02d;", i)
			for attempt := 0; ; attempt++ {
				if attempt == 10000 {
					e.t.Errorf("no successful Save of %q in %d attempts", item, attempt)
					return
				}
				data, v, err := e.s.Load(ctx, k, 0)
				switch {
				case errors.Is(err, store.ErrNotFound):
					data, v = nil, 0
				case err != nil:
					e.t.Error(err)
					return
				}
				_, err = e.s.Save(ctx, k, append(data, item...), v, longTTL)
				if err == nil {
					return
				}
				if !errors.Is(err, store.ErrConflict) {
					e.t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	data, _ := e.load(k, 0)
	for i := range writers {
		if !strings.Contains(string(data), fmt.Sprintf("session-%02d;", i)) {
			e.t.Fatalf("writer %d's item is missing from %q", i, data)
		}
	}
	if n := strings.Count(string(data), ";"); n != writers {
		t := e.t
		t.Fatalf("%d items after %d concurrent appends: %q", n, writers, data)
	}
}
