#!/usr/bin/env bash
# run.sh measures ginsession against gin-contrib/sessions, scs, a go-redis
# floor and bare gin, and load-tests the example app with wrk. One command
# on a fresh machine with Go, redis-server and redis-cli:
#
#   bench/run.sh
#
# It starts its own Redis on a free loopback port (never 6379, never a
# server you run), runs every benchmark COUNT times, compares the runs with
# benchstat, prints one table and stops the Redis it started. Results are
# kept in OUT (default: a new temporary directory), which it names at the end.
#
# Settings, from the environment:
#
#   COUNT=6           runs of each benchmark (at least 5)
#   BENCHTIME=1s      -benchtime of each run
#   BENCH=.           -bench pattern, e.g. 'Parallel/route=read/'
#   WRK_DURATION=15s  duration of each wrk run; WRK=0 skips the load test
#   OUT=dir           where results go
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
bench_dir=$(pwd)

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
WRK=${WRK:-1}
WRK_DURATION=${WRK_DURATION:-15s}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
OUT=${OUT:-$(mktemp -d -t ginsession-bench.XXXXXX)}
mkdir -p "$OUT"

((COUNT >= 5)) || {
	echo "COUNT must be at least 5 for benchstat to say anything" >&2
	exit 2
}

say() {
	printf '\n==== %s ====\n' "$*" >&2
}

redis_pid=""
app_pid=""
cleanup() {
	if [[ -n "$app_pid" ]]; then
		kill "$app_pid" 2>/dev/null || true
		wait "$app_pid" 2>/dev/null || true
	fi
	if [[ -n "$redis_pid" ]]; then
		kill "$redis_pid" 2>/dev/null || true
		wait_for 50 gone "$redis_pid" || kill -9 "$redis_pid" 2>/dev/null || true
	fi
}

gone() {
	! kill -0 "$1" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port prints a loopback port nothing listens on.
free_port() {
	local port
	for _ in $(seq 100); do
		port=$((20000 + RANDOM % 20000))
		if ! listening "$port"; then
			echo "$port"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# wait_for TRIES CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
	local tries=$1
	shift
	for _ in $(seq "$tries"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

for tool in go redis-server redis-cli; do
	command -v "$tool" >/dev/null || {
		echo "$tool is needed (Debian: apt-get install golang redis-server)" >&2
		exit 1
	}
done

say "Redis of our own"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
	--pidfile "$OUT/redis.pid" --dir "$OUT" --logfile "$OUT/redis.log"
wait_for 50 test -s "$OUT/redis.pid" || {
	echo "Redis did not start: $(tail -n 5 "$OUT/redis.log")" >&2
	exit 1
}
redis_pid=$(<"$OUT/redis.pid")
wait_for 50 listening "$redis_port"
redis_url="redis://127.0.0.1:$redis_port/0"
export GINSESSION_REDIS_URL=$redis_url
echo "$(redis-cli -p "$redis_port" info server | grep '^redis_version' | tr -d '\r') on 127.0.0.1:$redis_port, pid $redis_pid" >&2

say "benchmarks: $COUNT runs of -bench '$BENCH' -benchtime $BENCHTIME"
go test -c -o "$OUT/bench.test" .
: >"$OUT/bench.txt"
# One run of everything at a time, so that a change in the machine's load
# spreads over every contender instead of landing on a few.
for i in $(seq "$COUNT"); do
	echo "run $i of $COUNT" >&2
	"$OUT/bench.test" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" >>"$OUT/bench.txt"
done

say "lost-update check: 40 concurrent cart adds on one session, $COUNT times"
"$OUT/bench.test" -test.run '^TestLostUpdates$' -test.count "$COUNT" -test.v >"$OUT/lost.txt"
grep 'lost-update impl=' "$OUT/lost.txt" | sed 's/^ *//' >&2

: >"$OUT/wrk.txt"
if [[ "$WRK" != 0 ]]; then
	if ! command -v wrk >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		say "installing wrk"
		apt-get update -qq && apt-get install -y -qq wrk >&2
	fi
	if ! command -v wrk >/dev/null; then
		echo "wrk is not installed (Debian: apt-get install wrk); skipping the load test" >&2
	else
		(cd "$bench_dir/../example" && go build -o "$OUT/example" .)
		for kind in redis null; do
			say "wrk: example app, -store $kind, 16 connections, $WRK_DURATION"
			app_port=$(free_port)
			"$OUT/example" -addr "127.0.0.1:$app_port" -redis "$redis_url" -store "$kind" 2>"$OUT/example-$kind.log" &
			app_pid=$!
			wait_for 100 listening "$app_port" || {
				echo "the example app did not start: $(tail -n 5 "$OUT/example-$kind.log")" >&2
				exit 1
			}
			# A returning visitor: every request carries the session the
			# first one started (none with -store null).
			cookie=$(curl -s -o /dev/null -D - "http://127.0.0.1:$app_port/" |
				sed -n 's/^[Ss]et-[Cc]ookie: \(session=[^;]*\).*/\1/p' | head -n 1 | tr -d '\r')
			headers=()
			if [[ -n "$cookie" ]]; then
				headers=(-H "Cookie: $cookie")
			elif [[ "$kind" != null ]]; then
				echo "the example app's first page sent no session cookie" >&2
				exit 1
			fi
			wrk -t 2 -c 16 -d "$WRK_DURATION" --latency "${headers[@]}" "http://127.0.0.1:$app_port/" \
				>"$OUT/wrk-$kind.txt"
			cat "$OUT/wrk-$kind.txt" >&2
			rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk-$kind.txt")
			p99=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$kind.txt")
			non2xx=$(awk '/Non-2xx/ {print $NF}' "$OUT/wrk-$kind.txt")
			[[ -z "$non2xx" ]] || {
				echo "wrk saw $non2xx non-2xx responses from -store $kind" >&2
				exit 1
			}
			echo "wrk store=$kind rps=${rps%.*} p99=$p99" >>"$OUT/wrk.txt"
			kill "$app_pid"
			wait "$app_pid" 2>/dev/null || true
			app_pid=""
		done
	fi
fi

say "benchstat"
cols='/impl@(ginsession-redis ginsession-mem gincontrib-redis scs-redis floor floor-rmw gin)'
go run "$BENCHSTAT" -col "$cols" "$OUT/bench.txt" >"$OUT/benchstat.txt"
go run "$BENCHSTAT" -format csv -col "$cols" "$OUT/bench.txt" >"$OUT/benchstat.csv" 2>/dev/null
awk -f "$bench_dir/table.awk" "$OUT/benchstat.csv" "$OUT/lost.txt" "$OUT/wrk.txt" >"$OUT/table.md"
echo "benchstat's full comparison, with confidence intervals: $OUT/benchstat.txt" >&2
echo >&2
cat "$OUT/table.md"
echo >&2
echo "results in $OUT (raw runs: bench.txt)" >&2
