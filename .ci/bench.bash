#!/usr/bin/env bash
# Keeps the comparative benchmarks in bench/ from rotting: static checks of
# the bench module, then every benchmark once (-benchtime=1x) and the
# lost-update check, against Redis at 127.0.0.1:6379 DB 9.
#
#   bash .ci/bench.bash
#
# Every key it writes starts with a random prefix and is removed at the
# end; it never flushes the database. Timings from this run mean nothing:
# bench/run.sh measures.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export GINSESSION_REDIS_URL="${GINSESSION_REDIS_URL:-redis://127.0.0.1:6379/9}"

started_pid=""
tmp_dir=""
cleanup() {
	if [[ -n "$started_pid" ]]; then
		kill "$started_pid" 2>/dev/null || true
	fi
	if [[ -n "$tmp_dir" ]]; then
		rm -rf "$tmp_dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() {
	printf '\n==== %s ====\n' "$*"
}

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

pong() {
	[[ "$(redis-cli -p 6379 ping 2>/dev/null)" == PONG ]]
}

section "bench: gofmt, go vet, go mod tidy"
unformatted=$(gofmt -l bench)
[[ -z "$unformatted" ]] || fail "not gofmt'ed:"$'\n'"$unformatted"
go vet ./bench/...
(cd bench && go mod tidy -diff) || fail "bench/go.mod or bench/go.sum is not tidy; run (cd bench && go mod tidy)"
echo ok

# Only the default URL is ours to provide: start a Redis on 6379 if none
# answers there, and stop it again on exit.
if [[ "$GINSESSION_REDIS_URL" == "redis://127.0.0.1:6379/9" ]] && ! pong; then
	section "Redis on 127.0.0.1:6379"
	tmp_dir=$(mktemp -d -t ginsession-bench.XXXXXX)
	redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
		--pidfile "$tmp_dir/redis.pid" --dir "$tmp_dir" --logfile "$tmp_dir/redis.log"
	for _ in $(seq 50); do
		pong && break
		sleep 0.2
	done
	pong || fail "Redis did not start on port 6379: $(tail -n 5 "$tmp_dir/redis.log")"
	started_pid=$(<"$tmp_dir/redis.pid")
fi

section "bench: every benchmark once, and the lost-update check"
CI=true go test -count=1 -run '^TestLostUpdates$' -bench . -benchtime=1x -v ./bench/...
