//go:build faults

package faults

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

const (
	soakFor      = 75 * time.Second
	soakKillAt   = 35 * time.Second
	soakOutage   = 1 * time.Second
	soakSample   = 5 * time.Second
	goroutineTol = 5       // goroutines above the baseline after the soak
	heapSlack    = 8 << 20 // bytes of heap growth allowed past 1.5× the steady state
)

// TestSoak runs mixed traffic (adds, reads, clears, users leaving and new
// ones arriving) against a healthy Redis for 75 s, killing and restarting
// it once in the middle. Afterwards the goroutines are back to their
// baseline and the heap in use has not grown with the traffic.
func TestSoak(t *testing.T) {
	rs := startRedis(t, redisPortSoak, "--appendonly", "yes", "--appendfsync", "always")
	a := newApp(t, rs.Addr(), appPortSoak)

	// A short warm-up starts whatever the process starts lazily; then the
	// baseline, with every connection closed.
	warm := startLoad(t, a, loadConfig{users: 4, maxRequests: 20, maxDuration: 10 * time.Second})
	warm.Stop()
	time.Sleep(200 * time.Millisecond)
	baseG := a.goroutinesSettle(0, 500*time.Millisecond)
	baseHeap := heapInUse()

	l := startLoad(t, a, loadConfig{
		users:       20,
		getShare:    0.30,
		clearShare:  0.03,
		churn:       0.01,
		think:       5 * time.Millisecond,
		maxRequests: 100000,
		maxDuration: soakFor + 30*time.Second,
	})
	start := time.Now()
	var samples []uint64
	var peakG int
	var f *faultStats
	for i := 1; time.Since(start) < soakFor; i++ {
		next := start.Add(time.Duration(i) * soakSample)
		if f == nil && next.Sub(start) > soakKillAt {
			time.Sleep(time.Until(start.Add(soakKillAt)))
			f = l.Fault("SIGKILL mid-soak")
			rs.Kill()
			time.Sleep(soakOutage)
			l.Up(f, rs.Restart())
		}
		time.Sleep(time.Until(next))
		peakG = max(peakG, runtime.NumGoroutine())
		samples = append(samples, heapInUse())
	}
	dups, lost := l.Verify()
	l.Report()
	t.Logf("final carts: %d duplicated items, %d acknowledged items missing", dups, lost)

	afterG := a.goroutinesSettle(baseG+goroutineTol, 10*time.Second)
	afterHeap := heapInUse()
	var series []string
	for _, s := range samples {
		series = append(series, mib(s))
	}
	t.Logf("goroutines: %d before, peak %d under load, %d after (tolerance +%d)", baseG, peakG, afterG, goroutineTol)
	t.Logf("heap in use after GC: %s before; every %v: %s; %s after", mib(baseHeap), soakSample, strings.Join(series, " "), mib(afterHeap))

	if afterG > baseG+goroutineTol {
		t.Errorf("%d goroutines 10 s after the soak, baseline %d:\n%s", afterG, baseG, goroutineDump())
	}
	if len(samples) < 4 {
		t.Fatalf("only %d heap samples", len(samples))
	}
	// The steady state: the first sample past the ramp-up.
	steady := samples[1]
	limit := steady + steady/2 + heapSlack
	for i, s := range samples[2:] {
		if s > limit {
			t.Errorf("heap in use %s at sample %d, over %s (1.5× the steady %s + %s)", mib(s), i+2, mib(limit), mib(steady), mib(heapSlack))
		}
	}
	if afterHeap > limit {
		t.Errorf("heap in use %s after the soak, over %s", mib(afterHeap), mib(limit))
	}
	l.AssertRecovered(f, killBound)
	l.AssertNoViolations()
}
