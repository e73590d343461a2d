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
memcached_pid=""  # the server this shell started
memcached_dir=""  # its pidfile and log

# _memcached_query PORT COMMAND prints memcached's reply to COMMAND on
# 127.0.0.1:PORT. It fails if nothing listens there.
_memcached_query() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s\r\nquit\r\n" "$2" >&3 && cat <&3' \
		_ "$1" "$2" 2>/dev/null
}

_memcached_answers() {
	[[ "$(_memcached_query "$1" version)" == VERSION* ]]
}

# _memcached_port_free PORT succeeds if no TCP socket listens on PORT. It
# reads the kernel's table rather than connecting, which a listener that
# does not accept could stall.
_memcached_port_free() {
	! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v port="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit !found }'
}

# _memcached_wait TRIES CMD... runs CMD every 0.1 s until it succeeds, at
# most TRIES times. It gives up at once if CMD returns 2.
_memcached_wait() {
	local tries=$1 i rc
	shift
	for ((i = 0; i < tries; i++)); do
		if "$@"; then
			return 0
		else
			rc=$?
		fi
		((rc != 2)) || return 1
		sleep 0.1
	done
	return 1
}

_memcached_gone() {
	! kill -0 "$1" 2>/dev/null
}

# _memcached_stop_leftover PORT stops the memcached listening on PORT, if
# any, which memcached's stats name by pid, and waits for the port to be
# free.
_memcached_stop_leftover() {
	local port=$1 pid
	_memcached_port_free "$port" && return 0
	pid=$(_memcached_query "$port" stats | tr -d '\r' | awk '$1 == "STAT" && $2 == "pid" { print $3 }') || true
	if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == memcached ]]; then
		echo "stopping the memcached left on port $port (pid $pid)"
		# The temporary directory of its pidfile, if an earlier
		# start_memcached made it.
		local dir
		dir=$(tr '\0' '\n' <"/proc/$pid/cmdline" | awk 'prev == "-P" { print; exit } { prev = $0 }' | xargs -r dirname)
		kill "$pid" 2>/dev/null || true
		_memcached_wait 50 _memcached_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
		if [[ "$(basename "${dir:-/}")" == ginsession-memcached.* ]]; then
			rm -rf "$dir"
		fi
	fi
	# Without a pid, it may be a memcached that is shutting down.
	_memcached_wait 50 _memcached_port_free "$port" && return 0
	echo "port $port is taken by something that is not a memcached of this machine" >&2
	return 1
}

start_memcached() {
	printf '\n==== %s ====\n' "memcached on 127.0.0.1:$MEMCACHED_PORT"
	command -v memcached >/dev/null || { apt-get update && apt-get install -y memcached; }
	stop_memcached
	_memcached_stop_leftover "$MEMCACHED_PORT" || return 1

	memcached_dir=$(mktemp -d -t ginsession-memcached.XXXXXX)
	local user=()
	((EUID != 0)) || user=(-u root) # memcached refuses root without -u
	# In the background rather than with -d, so that its errors reach the
	# log. -U 0: no UDP. -I 1m is the default item size, which the tests
	# assume.
	memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -I 1m -P "$memcached_dir/memcached.pid" "${user[@]}" \
		>"$memcached_dir/memcached.log" 2>&1 &
	memcached_pid=$!
	if ! _memcached_wait 50 _memcached_up "$memcached_pid" "$MEMCACHED_PORT"; then
		echo "memcached did not start on port $MEMCACHED_PORT: $(cat "$memcached_dir/memcached.log")" >&2
		stop_memcached
		return 1
	fi
	export GINSESSION_MEMCACHED_ADDR="${GINSESSION_MEMCACHED_ADDR:-127.0.0.1:$MEMCACHED_PORT}"
	echo "$(_memcached_query "$MEMCACHED_PORT" version | tr -d '\r'), pid $memcached_pid"
}

# _memcached_up PID PORT succeeds if memcached answers on PORT, and
# returns 2 if PID has exited.
_memcached_up() {
	kill -0 "$1" 2>/dev/null || return 2
	_memcached_answers "$2"
}

# stop_memcached stops the memcached that start_memcached started, by pid.
stop_memcached() {
	if [[ -n "$memcached_pid" ]]; then
		kill "$memcached_pid" 2>/dev/null || true
		_memcached_wait 50 _memcached_gone "$memcached_pid" || kill -9 "$memcached_pid" 2>/dev/null || true
		wait "$memcached_pid" 2>/dev/null || true
	fi
	[[ -z "$memcached_dir" ]] || rm -rf "$memcached_dir"
	memcached_pid=""
	memcached_dir=""
}
