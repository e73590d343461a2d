//go:build faults

package faults

import (
	"testing"
	"time"
)

// freezeFor is how long Redis stays frozen: longer than go-redis's read
// timeout, so that go-redis gives up on commands already sent and sends
// them again on other connections while the originals wait in the frozen
// server's socket buffers.
const freezeFor = goRedisReadTimeout + 3*time.Second

// freezeBound is the longest a request may wait around the freeze: until
// the server wakes, plus one read timeout.
const freezeBound = freezeFor + goRedisReadTimeout

// TestFreezeDuringCommits stops Redis (SIGSTOP) for longer than go-redis's
// read timeout while 40 users commit cart changes, then resumes it
// (SIGCONT). go-redis retries a compare-and-set that timed out; on wake
// the original runs, and the retry must not make the middleware replay
// the change on top of itself: every acknowledged add is in the cart
// exactly once.
func TestFreezeDuringCommits(t *testing.T) {
	rs := startRedis(t, redisPortFreeze, "--appendonly", "yes", "--appendfsync", "always")
	a := newApp(t, rs.Addr(), appPortFreeze)
	l := startLoad(t, a, loadConfig{
		users:       40,
		getShare:    0.25,
		think:       10 * time.Millisecond,
		maxRequests: 5000,
		maxDuration: 90 * time.Second,
	})
	l.WaitAllActive(15 * time.Second)
	time.Sleep(2 * time.Second)

	f := l.Fault("SIGSTOP")
	rs.Freeze()
	time.Sleep(freezeFor)
	rs.Thaw()
	up, err := rs.waitUp(10 * time.Second)
	if err != nil {
		t.Fatalf("Redis did not answer after SIGCONT: %v", err)
	}
	l.Up(f, up)
	time.Sleep(3 * time.Second)

	dups, lost := l.Verify()
	l.Report()
	t.Logf("final carts: %d duplicated items, %d acknowledged items missing", dups, lost)
	l.AssertRecovered(f, freezeBound)
	l.AssertNoViolations()
}
