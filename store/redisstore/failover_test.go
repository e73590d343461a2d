//go:build unix

package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/redisstore"
	"github.com/ginsession/ginsession/store/storetest"
)

// maxClusterRecovery is how soon after a replica's promotion the sessions
// of the shard whose master died must be served again.
const maxClusterRecovery = 10 * time.Second

// nodeClient returns a client for the single node at addr, which fails
// fast: the test's own view of the cluster, apart from the client under
// test.
func nodeClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterHealthy returns nil if every node at addrs sees the cluster as
// ok and no node as failing, there are 3 masters, and every replica is in
// sync with its master.
func clusterHealthy(ctx context.Context, nodes map[string]*redis.Client) error {
	masters := 0
	for addr, c := range nodes {
		info, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state is not ok", addr)
		}
		list, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER NODES: %w", addr, err)
		}
		if strings.Contains(list, "fail") || strings.Contains(list, "disconnected") || strings.Contains(list, "handshake") {
			return fmt.Errorf("%s sees a node failing:\n%s", addr, list)
		}
		repl, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", addr, err)
		}
		switch {
		case strings.Contains(repl, "role:master"):
			masters++
		case !strings.Contains(repl, "master_link_status:up"):
			return fmt.Errorf("%s: a replica out of sync", addr)
		}
	}
	if masters != 3 {
		return fmt.Errorf("%d masters; want 3", masters)
	}
	return nil
}

// waitFor calls f until it returns nil or timeout has passed, and returns
// its last error.
func waitFor(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}

// slotOwner returns the address of the master that the node behind c says
// serves slot (CLUSTER NODES).
func slotOwner(ctx context.Context, c *redis.Client, slot int64) (string, error) {
	list, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(list, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !slices.Contains(strings.Split(f[2], ","), "master") {
			continue
		}
		for _, r := range f[8:] {
			first, last, isRange := strings.Cut(r, "-")
			if !isRange {
				last = first
			}
			lo, err1 := strconv.ParseInt(first, 10, 64)
			hi, err2 := strconv.ParseInt(last, 10, 64)
			if err1 == nil && err2 == nil && lo <= slot && slot <= hi {
				addr, _, _ := strings.Cut(f[1], "@")
				return addr, nil
			}
		}
	}
	return "", fmt.Errorf("no master serves slot %d", slot)
}

// restartCommand returns the command that starts the node behind c again
// as it runs now: from the same dir and cluster config file, so that it
// rejoins the cluster as the same node.
func restartCommand(ctx context.Context, t *testing.T, c *redis.Client) *exec.Cmd {
	t.Helper()
	conf, err := c.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	server, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	// INFO's executable is made absolute from the node's working directory
	// when it was started, which is wrong for one found through $PATH.
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if bin = infoField(server, "executable"); bin == "" {
			t.Fatalf("no redis-server in $PATH (%v), and INFO server has no executable", err)
		}
	}
	args := []string{"--port", conf["port"], "--cluster-enabled", "yes",
		"--cluster-config-file", conf["cluster-config-file"], "--cluster-node-timeout", conf["cluster-node-timeout"],
		"--dir", conf["dir"], "--save", "", "--appendonly", "no", "--daemonize", "yes"}
	if b := strings.Fields(conf["bind"]); len(b) > 0 {
		args = append(append(args, "--bind"), b...)
	}
	for _, name := range []string{"pidfile", "logfile"} {
		if conf[name] != "" {
			args = append(args, "--"+name, conf[name])
		}
	}
	return exec.Command(bin, args...)
}

// infoField returns the value of name in the text of an INFO reply.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// TestClusterFailover saves sessions all over a 3-master, 3-replica Redis
// Cluster (.ci/cluster6.bash), waits until the replicas have them, kills
// (SIGKILL) the master of some of them and measures how soon after its
// replica's promotion a Store on a ClusterClient with go-redis's default
// options serves that shard's sessions again, with their data and
// versions. Left to itself, the client would keep sending them to the dead
// master until its next periodic reload of the slot map, up to 60 s later;
// the Store has it reload after the errors. The test then restarts the
// killed node, which rejoins as a replica, and waits for the cluster to be
// whole again, so that it can run again.
func TestClusterFailover(t *testing.T) {
	addrs := strings.Split(storetest.ServerEnv(t, "GINSESSION_REDIS_CLUSTER6_ADDRS",
		"127.0.0.1:30101,127.0.0.1:30102,127.0.0.1:30103,127.0.0.1:30104,127.0.0.1:30105,127.0.0.1:30106"), ",")
	ctx := context.Background()
	nodes := make(map[string]*redis.Client)
	for _, addr := range addrs {
		nodes[addr] = nodeClient(t, addr)
	}
	// An earlier run may have left the restarted node still syncing.
	if err := waitFor(60*time.Second, 200*time.Millisecond, func() error { return clusterHealthy(ctx, nodes) }); err != nil {
		t.Fatalf("the cluster at %s is not healthy: %v", strings.Join(addrs, ","), err)
	}

	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}) // go-redis's defaults
	t.Cleanup(func() { _ = client.Close() })
	prefix := testPrefix(t)
	s := redisstore.New(client, redisstore.WithPrefix(prefix))

	const sessions = 300
	keys := make([]string, sessions)
	versions := make(map[string]uint64, sessions)
	for i := range keys {
		keys[i] = fmt.Sprintf("session-%d", i)
		v, err := s.Save(ctx, keys[i], []byte(keys[i]), 0, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		versions[keys[i]] = v
	}
	t.Cleanup(func() {
		for _, key := range keys {
			_ = s.Delete(context.Background(), key)
		}
	})

	// The victim is the master of the first session; its shard is every
	// session it serves.
	admin := nodes[addrs[0]]
	slots := make(map[string]int64, sessions)
	for _, key := range keys {
		slot, err := admin.ClusterKeySlot(ctx, prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[key] = slot
	}
	victim, err := slotOwner(ctx, admin, slots[keys[0]])
	if err != nil {
		t.Fatal(err)
	}
	var shard, others []string
	for _, key := range keys {
		owner, err := slotOwner(ctx, admin, slots[key])
		if err != nil {
			t.Fatal(err)
		}
		if owner == victim {
			shard = append(shard, key)
		} else {
			others = append(others, key)
		}
	}
	if len(others) == 0 {
		t.Fatalf("all %d sessions are on %s", sessions, victim)
	}
	var survivor *redis.Client
	for addr, c := range nodes {
		if addr != victim {
			survivor = c
			break
		}
	}

	// WAIT on a connection that has just written to the victim: once a
	// replica has that write, it has every earlier one.
	vc := nodes[victim]
	var wait *redis.Cmd
	if _, err := vc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{"+prefix+shard[0]+"}barrier", "x", time.Minute)
		wait = p.Do(ctx, "wait", 1, 10000)
		return nil
	}); err != nil {
		t.Fatalf("SET and WAIT on %s: %v", victim, err)
	}
	if n, err := wait.Int64(); err != nil || n < 1 {
		t.Fatalf("WAIT 1 10000 on %s = %d, %v; want a replica with the sessions", victim, n, err)
	}
	// Every node's connections are open, as in a server that has been up.
	for _, key := range keys {
		if _, _, err := s.Load(ctx, key, 0); err != nil {
			t.Fatal(err)
		}
	}

	pid, err := strconv.Atoi(func() string {
		info, err := vc.Info(ctx, "server").Result()
		if err != nil {
			t.Fatal(err)
		}
		return infoField(info, "process_id")
	}())
	if err != nil {
		t.Fatalf("process_id of %s: %v", victim, err)
	}
	restart := restartCommand(ctx, t, vc)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", victim, pid, err)
	}
	t.Logf("killed the master %s (pid %d), which serves %d of %d sessions", victim, pid, len(shard), sessions)
	t.Cleanup(func() {
		out, err := restart.CombinedOutput()
		if err != nil {
			t.Errorf("restarting %s: %v\n%s", victim, err, out)
			return
		}
		err = waitFor(60*time.Second, 200*time.Millisecond, func() error { return clusterHealthy(ctx, nodes) })
		if err != nil {
			t.Errorf("the cluster is not whole again after restarting %s: %v", victim, err)
			return
		}
		t.Logf("restarted %s; it rejoined as a replica", victim)
	})

	// Watch for the promotion, from a node that is still up.
	watch, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	promotion := make(chan time.Time, 1)
	var newMaster string
	go func() {
		for watch.Err() == nil {
			if owner, err := slotOwner(watch, survivor, slots[shard[0]]); err == nil && owner != victim {
				newMaster = owner
				promotion <- time.Now()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// Meanwhile keep asking for one of the shard's sessions, as its users
	// would, until it is served.
	// Sessions on the other shards are loaded too, to see what their users
	// go through.
	var promoted, recovered time.Time
	failures, othersLoaded, othersFailed := 0, 0, 0
	for deadline := killed.Add(90 * time.Second); recovered.IsZero() && time.Now().Before(deadline); {
		if _, _, err := s.Load(ctx, others[othersLoaded%len(others)], 0); err != nil {
			othersFailed++
			t.Logf("%v after the kill, a Load from another shard failed: %v", time.Since(killed).Round(time.Millisecond), err)
		}
		othersLoaded++
		_, _, err := s.Load(ctx, shard[0], 0)
		switch {
		case err == nil:
			recovered = time.Now()
		case errors.Is(err, store.ErrNotFound):
			t.Fatalf("%s is missing after the failover", shard[0])
		default:
			failures++
			time.Sleep(20 * time.Millisecond)
		}
		if promoted.IsZero() {
			select {
			case promoted = <-promotion:
				t.Logf("%s is master of the shard %v after the kill", newMaster, promoted.Sub(killed).Round(time.Millisecond))
			default:
			}
		}
	}
	if recovered.IsZero() {
		t.Fatalf("the shard's sessions are still not served %v after the kill (promoted: %v)", time.Since(killed), !promoted.IsZero())
	}
	if promoted.IsZero() {
		// A Load succeeded, so the shard has a master again, which the
		// watcher will see within moments.
		select {
		case promoted = <-promotion:
		case <-time.After(5 * time.Second):
			t.Fatalf("a Load succeeded but no node says %s's slots moved", victim)
		}
	}
	if recovered.Before(promoted) {
		promoted = recovered
	}
	if recovered.IsZero() {
		t.Fatalf("the shard's sessions are still not served %v after the kill (promoted: %v)", time.Since(killed), !promoted.IsZero())
	}
	took := recovered.Sub(promoted)
	t.Logf("the shard's sessions are served again %v after the promotion (%v after the kill; %d Loads failed); meanwhile %d of %d Loads from the other shards failed",
		took.Round(time.Millisecond), recovered.Sub(killed).Round(time.Millisecond), failures, othersFailed, othersLoaded)
	if took > maxClusterRecovery {
		t.Errorf("the shard's sessions came back %v after the promotion; want at most %v", took.Round(time.Millisecond), maxClusterRecovery)
	}

	// Every session, on every shard, is there with its data and version.
	for _, key := range append(shard, others...) {
		err := waitFor(maxClusterRecovery, 50*time.Millisecond, func() error {
			data, v, err := s.Load(ctx, key, time.Minute)
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s is missing after the failover", key)
			}
			if err == nil && (!bytes.Equal(data, []byte(key)) || v != versions[key]) {
				t.Fatalf("%s after the failover: %q version %d; want %q version %d", key, data, v, key, versions[key])
			}
			return err
		})
		if err != nil {
			t.Fatalf("Load of %s after the failover: %v", key, err)
		}
	}
	// The new master takes compare-and-sets, and turns down stale ones.
	if _, err := s.Save(ctx, shard[0], []byte("after"), versions[shard[0]], time.Minute); err != nil {
		t.Fatalf("compare-and-set on the new master %s: %v", newMaster, err)
	}
	if _, err := s.Save(ctx, shard[1%len(shard)], []byte("stale"), ^versions[shard[1%len(shard)]], time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale compare-and-set on the new master: %v; want ErrConflict", err)
	}
}
