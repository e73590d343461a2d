# shellcheck shell=bash
# A Redis master, its replica and a Sentinel watching them, for the tests
# that reach Redis through Sentinel (redis.NewFailoverClient). Sourced by
# .ci/run, which calls start_sentinel before the tests and stop_sentinel
# when it exits:
#
#   source .ci/sentinel.bash
#   start_sentinel   # master 30011, replica 30012, Sentinel 30026; exports
#                    # GINSESSION_REDIS_SENTINEL_ADDRS and _MASTER if unset
#   ...
#   stop_sentinel    # stops the three servers by pid; safe to call twice
#
# The servers are this run's own: the failover test makes Sentinel swap
# master and replica, which no shared server should go through. Servers
# left on the ports by an earlier run are shut down first. Both functions
# return non-zero on failure, which ends a script run with set -e.

SENTINEL_MASTER_NAME="${SENTINEL_MASTER_NAME:-ginsession}"
SENTINEL_REDIS_PORTS=(30011 30012)
SENTINEL_PORT=30026
sentinel_dir="" # pidfiles, logs and the Sentinel's config

# wait_for, pong and port_free.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

# _sentinel_ready succeeds once the Sentinel knows the master and sees its
# replica as up, so that it could fail over.
_sentinel_ready() {
	local replicas
	redis-cli -p "$SENTINEL_PORT" sentinel get-master-addr-by-name "$SENTINEL_MASTER_NAME" | grep -q . || return 1
	replicas=$(redis-cli -p "$SENTINEL_PORT" sentinel replicas "$SENTINEL_MASTER_NAME") || return 1
	grep -qx 'slave' <<<"$replicas" && ! grep -q 's_down\|disconnected' <<<"$replicas"
}

_sentinel_in_sync() {
	redis-cli -p "${SENTINEL_REDIS_PORTS[1]}" info replication | grep -q '^master_link_status:up'
}

start_sentinel() {
	printf '\n==== Redis Sentinel on port %s, master %s, replica %s ====\n' \
		"$SENTINEL_PORT" "${SENTINEL_REDIS_PORTS[0]}" "${SENTINEL_REDIS_PORTS[1]}"
	local port
	for port in "${SENTINEL_REDIS_PORTS[@]}" "$SENTINEL_PORT"; do
		redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
		wait_for 50 port_free "$port" || {
			echo "port $port is still taken" >&2
			return 1
		}
	done
	sentinel_dir=$(mktemp -d -t ginsession-sentinel.XXXXXX)
	local master=${SENTINEL_REDIS_PORTS[0]} replica=${SENTINEL_REDIS_PORTS[1]}
	for port in "$master" "$replica"; do
		local args=(--port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes
			--pidfile "$sentinel_dir/$port.pid" --dir "$sentinel_dir" --logfile "$sentinel_dir/$port.log")
		[[ "$port" == "$master" ]] || args+=(--replicaof 127.0.0.1 "$master")
		redis-server "${args[@]}"
	done
	for port in "$master" "$replica"; do
		wait_for 50 pong "$port" || {
			echo "Redis on port $port did not start: $(tail -n 5 "$sentinel_dir/$port.log")" >&2
			return 1
		}
	done
	wait_for 150 _sentinel_in_sync || {
		echo "the replica on port $replica did not sync: $(tail -n 5 "$sentinel_dir/$replica.log")" >&2
		return 1
	}
	# Sentinel rewrites its config file, so it gets one of its own.
	cat >"$sentinel_dir/sentinel.conf" <<EOF
port $SENTINEL_PORT
bind 127.0.0.1
daemonize yes
pidfile $sentinel_dir/sentinel.pid
logfile $sentinel_dir/sentinel.log
dir $sentinel_dir
sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $master 1
sentinel down-after-milliseconds $SENTINEL_MASTER_NAME 2000
sentinel failover-timeout $SENTINEL_MASTER_NAME 10000
EOF
	redis-server "$sentinel_dir/sentinel.conf" --sentinel
	wait_for 150 _sentinel_ready || {
		echo "Sentinel did not see master and replica: $(tail -n 5 "$sentinel_dir/sentinel.log")" >&2
		return 1
	}
	export GINSESSION_REDIS_SENTINEL_ADDRS="${GINSESSION_REDIS_SENTINEL_ADDRS:-127.0.0.1:$SENTINEL_PORT}"
	export GINSESSION_REDIS_SENTINEL_MASTER="${GINSESSION_REDIS_SENTINEL_MASTER:-$SENTINEL_MASTER_NAME}"
	echo "Sentinel watches $SENTINEL_MASTER_NAME: master 127.0.0.1:$master, replica 127.0.0.1:$replica in sync"
}

stop_sentinel() {
	[[ -n "$sentinel_dir" ]] || return 0
	local pidfile pid
	for pidfile in "$sentinel_dir"/*.pid; do
		[[ -f "$pidfile" ]] || continue
		pid=$(<"$pidfile")
		kill "$pid" 2>/dev/null || true
		wait_for 50 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$sentinel_dir"
	sentinel_dir=""
}
