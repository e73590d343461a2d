//go:build faults

package faults

import (
	"testing"
	"time"
)

// killBound is the longest a request may wait while Redis is down (the
// process is gone and connections are refused) with go-redis's default
// options: one read timeout. The test reports the measured worst wait.
const killBound = goRedisReadTimeout

// TestKillUnderLoad kills a Redis that fsyncs every write (appendonly,
// appendfsync always) with SIGKILL under cart traffic from 40 users and
// restarts it on its AOF 3 s later. No acknowledged add may be lost or
// applied twice; during the outage the users get 503s, never a 500, a
// panic, a wrong 200 or a 503 carrying the handler's success body; within
// 2 s of Redis answering PING again every request succeeds.
func TestKillUnderLoad(t *testing.T) {
	rs := startRedis(t, redisPortOutage, "--appendonly", "yes", "--appendfsync", "always")
	a := newApp(t, rs.Addr(), appPortOutage)
	l := startLoad(t, a, loadConfig{
		users:       40,
		getShare:    0.25,
		think:       10 * time.Millisecond,
		maxRequests: 5000,
		maxDuration: 60 * time.Second,
	})
	l.WaitAllActive(15 * time.Second)
	time.Sleep(2 * time.Second)

	f := l.Fault("SIGKILL")
	rs.Kill()
	time.Sleep(3 * time.Second)
	up := rs.Restart()
	l.Up(f, up) // returns recoveryGrace after PING
	time.Sleep(3 * time.Second)

	dups, lost := l.Verify()
	l.Report()
	t.Logf("final carts: %d duplicated items, %d acknowledged items missing", dups, lost)
	l.AssertRecovered(f, killBound)
	l.AssertNoViolations()
}
