#!/usr/bin/env bash
# The fault suite (internal/faults, build tag faults): the cart application
# with the middleware and redisstore under load from many users while
# redis-server processes of its own, on 127.0.0.1:30201-30203, are killed
# (SIGKILL), frozen (SIGSTOP) and restarted. The applications listen on
# 127.0.0.1:30211-30213. Run it from any directory:
#
#   bash .ci/faults.bash
#
# It first frees its ports (30201-30220) of whatever an earlier run left
# there (a redis-server or a faults test binary, found by port or by pid
# file, and killed by pid), then vets and runs the suite, and on exit
# (pass, fail or interrupt) kills by pid anything it or the suite started.
# It exits non-zero when the suite fails. It takes about 2 minutes.
#
# No -race: the main suite already runs every package with -race; this
# one measures waits and recovery times on 2 cores against fixed bounds,
# which the race detector's slowdown would distort.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t FAULTS_PORTS < <(seq 30201 30220)
FAULTS_DIR="${TMPDIR:-/tmp}/ginsession-faults" # the servers' directories and pid files
export GINSESSION_FAULTS_DIR="$FAULTS_DIR"
test_pid="" # the go test process

# _faults_kill PID kills PID if it is a redis-server or a faults test
# binary (a leftover of this suite), and waits until it is gone.
_faults_kill() {
	local pid=$1 comm i
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
	case "$comm" in
	redis-server | faults.test) ;;
	*) return 0 ;;
	esac
	echo "stopping $comm (pid $pid)"
	kill -CONT "$pid" 2>/dev/null || true # a frozen server must run to die
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		[[ -e "/proc/$pid" ]] || return 0
		sleep 0.1
	done
	echo "pid $pid ($comm) is still there" >&2
}

# _faults_listeners PORT prints the pids listening on 127.0.0.1:PORT.
_faults_listeners() {
	ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

faults_cleanup() {
	local pid child pidfile port
	if [[ -n "$test_pid" ]] && kill -0 "$test_pid" 2>/dev/null; then
		# go test's child is the test binary, parent of the servers.
		for child in $(pgrep -P "$test_pid" || true); do
			_faults_kill "$child"
		done
		kill "$test_pid" 2>/dev/null || true
	fi
	test_pid=""
	for pidfile in "$FAULTS_DIR"/*/redis.pid; do
		[[ -f "$pidfile" ]] || continue
		_faults_kill "$(<"$pidfile")"
	done
	for port in "${FAULTS_PORTS[@]}"; do
		for pid in $(_faults_listeners "$port"); do
			_faults_kill "$pid"
		done
	done
	rm -rf "$FAULTS_DIR"
}

trap faults_cleanup EXIT
trap 'exit 130' INT TERM

printf '\n==== fault suite: Redis killed, frozen and restarted under load ====\n'
faults_cleanup
for port in "${FAULTS_PORTS[@]}"; do
	if [[ -n "$(_faults_listeners "$port")" ]]; then
		echo "FAIL: port $port is taken by another program: $(ss -ltnpH "sport = :$port")" >&2
		exit 1
	fi
done
mkdir -p "$FAULTS_DIR"
redis-server --version

go vet -tags faults ./internal/faults/
rc=0
go test -tags faults -count=1 -v -timeout 15m ./internal/faults/ &
test_pid=$!
wait "$test_pid" || rc=$?
test_pid=""
if ((rc != 0)); then
	echo "FAIL: the fault suite failed (exit status $rc)" >&2
	exit "$rc"
fi
echo "fault suite passed"
