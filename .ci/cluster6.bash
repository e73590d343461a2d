# shellcheck shell=bash
# A Redis Cluster of 3 masters and 3 replicas, for the redisstore test
# that kills a master and measures how soon its sessions are served again
# (TestClusterFailover). Sourced by .ci/run, which calls start_cluster6
# before the tests and stop_cluster6 when it exits:
#
#   source .ci/cluster6.bash
#   start_cluster6   # nodes on 30101-30106, cluster-node-timeout 2000 ms;
#                    # exports GINSESSION_REDIS_CLUSTER6_ADDRS if unset
#   ...
#   stop_cluster6    # stops the six nodes by pid; safe to call twice
#
# The nodes are this run's own: the test SIGKILLs a master, waits for its
# replica's promotion and restarts the killed node (from the same dir, so
# it rejoins as a replica), which no shared server should go through. The
# cluster is whole again after each run of the test, so it can run again.
# Servers left on the ports by an earlier run are shut down first. Both
# functions return non-zero on failure, which ends a script run with set -e.

CLUSTER6_PORTS=(30101 30102 30103 30104 30105 30106)
CLUSTER6_NODE_TIMEOUT=2000 # ms before a silent master is marked failed
cluster6_dir="" # pidfiles, logs and the nodes' nodes-PORT.conf

# wait_for, pong and port_free.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

# _cluster6_ready succeeds once every node sees the cluster as ok, every
# node agrees on the slots, and every replica is in sync with its master.
_cluster6_ready() {
	local port info masters=0 replicas=0
	for port in "${CLUSTER6_PORTS[@]}"; do
		redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || return 1
		info=$(redis-cli -p "$port" info replication) || return 1
		if grep -q '^role:master' <<<"$info"; then
			masters=$((masters + 1))
		else
			grep -q '^master_link_status:up' <<<"$info" || return 1
			replicas=$((replicas + 1))
		fi
	done
	((masters == 3 && replicas == 3)) || return 1
	redis-cli --cluster check "127.0.0.1:${CLUSTER6_PORTS[0]}" >/dev/null 2>&1
}

start_cluster6() {
	printf '\n==== Redis Cluster, 3 masters and 3 replicas, on ports %s ====\n' "${CLUSTER6_PORTS[*]}"
	local port addrs=()
	for port in "${CLUSTER6_PORTS[@]}"; do
		# A server left over from an earlier run would hold the port and
		# its old cluster state.
		redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
		wait_for 50 port_free "$port" || {
			echo "port $port is still taken" >&2
			return 1
		}
	done
	cluster6_dir=$(mktemp -d -t ginsession-cluster6.XXXXXX)
	for port in "${CLUSTER6_PORTS[@]}"; do
		redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
			--cluster-config-file "nodes-$port.conf" --cluster-node-timeout "$CLUSTER6_NODE_TIMEOUT" \
			--save '' --appendonly no --daemonize yes \
			--pidfile "$cluster6_dir/$port.pid" --dir "$cluster6_dir" --logfile "$cluster6_dir/$port.log"
		addrs+=("127.0.0.1:$port")
	done
	for port in "${CLUSTER6_PORTS[@]}"; do
		wait_for 50 pong "$port" || {
			echo "cluster node $port did not start: $(tail -n 5 "$cluster6_dir/$port.log")" >&2
			return 1
		}
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$cluster6_dir/create.log" 2>&1 || {
		echo "redis-cli --cluster create: $(cat "$cluster6_dir/create.log")" >&2
		return 1
	}
	wait_for 300 _cluster6_ready || {
		echo "the cluster on ${CLUSTER6_PORTS[*]} did not become ready:" >&2
		redis-cli --cluster check "127.0.0.1:${CLUSTER6_PORTS[0]}" >&2 || true
		return 1
	}
	GINSESSION_REDIS_CLUSTER6_ADDRS="${GINSESSION_REDIS_CLUSTER6_ADDRS:-$(
		IFS=,
		echo "${addrs[*]}"
	)}"
	export GINSESSION_REDIS_CLUSTER6_ADDRS
	echo "cluster_state:ok on all 6 nodes, 3 replicas in sync"
}

stop_cluster6() {
	[[ -n "$cluster6_dir" ]] || return 0
	local pidfile pid
	for pidfile in "$cluster6_dir"/*.pid; do
		[[ -f "$pidfile" ]] || continue
		pid=$(<"$pidfile")
		kill "$pid" 2>/dev/null || true
		wait_for 50 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$cluster6_dir"
	cluster6_dir=""
}
