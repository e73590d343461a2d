# shellcheck shell=bash
# The memcached that the memcachedstore tests run against. Sourced by
# .ci/run, which calls start_memcached before the tests and stop_memcached
# when it exits:
#
#   source .ci/memcached.bash
#   start_memcached   # 127.0.0.1:21211; exports GINSESSION_MEMCACHED_ADDR if unset
#   ...
#   stop_memcached    # stops it by pid; safe to call more than once
#
# start_memcached installs memcached if it is missing, and first stops a
# memcached left on the port by an earlier run. Both functions return
# non-zero on failure, which ends a script run with set -e.

MEMCACHED_PORT="${MEMCACHED_PORT:-21211}"
memcached_dir="" # pidfile and log of the server this shell started

# _memcached_query PORT COMMAND prints memcached's reply to COMMAND on
# 127.0.0.1:PORT. It fails if nothing listens there.
_memcached_query() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s\r\nquit\r\n" "$2" >&3 && cat <&3' \
		_ "$1" "$2" 2>/dev/null
}

_memcached_answers() {
	[[ "$(_memcached_query "$1" version)" == VERSION* ]]
}

# _memcached_port_free PORT succeeds if nothing accepts connections on PORT.
_memcached_port_free() {
	! timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# _memcached_wait TRIES CMD... runs CMD every 0.1 s until it succeeds, at
# most TRIES times.
_memcached_wait() {
	local tries=$1 i
	shift
	for ((i = 0; i < tries; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

_memcached_gone() {
	! kill -0 "$1" 2>/dev/null
}

# _memcached_stop_leftover PORT stops the memcached listening on PORT, if
# any, which memcached's stats name by pid.
_memcached_stop_leftover() {
	local port=$1 pid
	_memcached_port_free "$port" && return 0
	pid=$(_memcached_query "$port" stats | tr -d '\r' | awk '$1 == "STAT" && $2 == "pid" { print $3 }') || true
	if [[ -z "$pid" || "$(cat "/proc/$pid/comm" 2>/dev/null)" != memcached ]]; then
		echo "port $port is taken by something that is not a memcached of this machine" >&2
		return 1
	fi
	echo "stopping the memcached left on port $port (pid $pid)"
	kill "$pid" 2>/dev/null || true
	_memcached_wait 50 _memcached_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
	_memcached_wait 50 _memcached_port_free "$port" || {
		echo "port $port is still taken" >&2
		return 1
	}
}

start_memcached() {
	printf '\n==== %s ====\n' "memcached on 127.0.0.1:$MEMCACHED_PORT"
	command -v memcached >/dev/null || { apt-get update && apt-get install -y memcached; }
	stop_memcached
	_memcached_stop_leftover "$MEMCACHED_PORT" || return 1

	memcached_dir=$(mktemp -d -t ginsession-memcached.XXXXXX)
	local user=()
	((EUID != 0)) || user=(-u root) # memcached refuses root without -u
	# -U 0: no UDP. -I 1m is the default item size, which the tests assume.
	if ! memcached -d -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -I 1m \
		-P "$memcached_dir/memcached.pid" "${user[@]}" >"$memcached_dir/memcached.log" 2>&1; then
		echo "memcached did not start: $(cat "$memcached_dir/memcached.log")" >&2
		return 1
	fi
	if ! _memcached_wait 50 _memcached_answers "$MEMCACHED_PORT"; then
		echo "memcached does not answer on port $MEMCACHED_PORT: $(cat "$memcached_dir/memcached.log")" >&2
		return 1
	fi
	export GINSESSION_MEMCACHED_ADDR="${GINSESSION_MEMCACHED_ADDR:-127.0.0.1:$MEMCACHED_PORT}"
	echo "$(_memcached_query "$MEMCACHED_PORT" version | tr -d '\r'), pid $(<"$memcached_dir/memcached.pid")"
}

# stop_memcached stops the memcached that start_memcached started, by pid.
stop_memcached() {
	[[ -n "$memcached_dir" ]] || return 0
	local pid
	if [[ -s "$memcached_dir/memcached.pid" ]]; then
		pid=$(<"$memcached_dir/memcached.pid")
		kill "$pid" 2>/dev/null || true
		_memcached_wait 50 _memcached_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
	fi
	rm -rf "$memcached_dir"
	memcached_dir=""
}
