# Starts and stops the server that the mongostore tests run against. Meant
# to be sourced by .ci/run (bash, with set -euo pipefail), from any
# directory:
#
#   source store/mongostore/ci.bash
#   start_mongo   # exports GINSESSION_MONGO_URL
#   ...           # go test
#   stop_mongo    # also safe to call from an EXIT trap, and more than once
#
# No MongoDB server can be installed on the CI machines, so start_mongo
# builds and starts ferretserver (internal/ferretserver): FerretDB, which
# speaks MongoDB's wire protocol, keeping its data in SQLite files in
# ${TMPDIR:-/tmp}/ginsession-mongo-$MONGO_PORT (removed by stop_mongo). It
# listens on 127.0.0.1:$MONGO_PORT, 27018 by default so as never to meet a
# real mongod on 27017, and start_mongo exports
# GINSESSION_MONGO_URL=mongodb://127.0.0.1:$MONGO_PORT/. If
# GINSESSION_MONGO_URL already names another server, start_mongo starts
# nothing and the tests use that one.
#
# Everything defined here is named mongo_*, MONGO_*, *_mongo or
# check_ferretserver, to keep out of the way of the script that sources
# it. It sets no trap.

MONGO_PORT="${MONGO_PORT:-27018}"
mongo_src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The server's binary, data, log and pid file. The directory has a fixed
# name, so a run can stop the server that a killed run left behind and
# remove its files.
mongo_dir="${TMPDIR:-/tmp}/ginsession-mongo-$MONGO_PORT"
mongo_pidfile="$mongo_dir/ferretserver.pid"

mongo_fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# mongo_accepts reports whether something accepts TCP connections on the
# port.
mongo_accepts() {
	(exec 3<>"/dev/tcp/127.0.0.1/$MONGO_PORT") 2>/dev/null
}

# mongo_kill stops the process whose pid is in the pid file, if it is a
# ferretserver.
mongo_kill() {
	[[ -f "$mongo_pidfile" ]] || return 0
	local pid i
	pid=$(<"$mongo_pidfile")
	if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ferretserver; then
		kill "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
}

start_mongo() {
	printf '\n==== %s ====\n' "MongoDB stand-in (FerretDB) on 127.0.0.1:$MONGO_PORT"
	local url="mongodb://127.0.0.1:$MONGO_PORT/"
	if [[ -n "${GINSESSION_MONGO_URL:-}" && "$GINSESSION_MONGO_URL" != "$url" ]]; then
		echo "GINSESSION_MONGO_URL names another server; the tests use it, and none is started"
		return 0
	fi
	stop_mongo # one left over from an earlier run
	local i
	for ((i = 0; i < 50; i++)); do
		mongo_accepts || break
		sleep 0.2
	done
	! mongo_accepts || mongo_fail "port $MONGO_PORT is taken by something other than our ferretserver"

	mkdir -p "$mongo_dir/data"
	local start=$SECONDS
	# ferretserver is a module of its own, outside the workspace.
	(cd "$mongo_src/internal/ferretserver" && GOWORK=off go build -o "$mongo_dir/ferretserver" .) ||
		mongo_fail "building ferretserver"
	echo "built ferretserver in $((SECONDS - start)) s"

	"$mongo_dir/ferretserver" -listen "127.0.0.1:$MONGO_PORT" -dir "$mongo_dir/data" \
		>"$mongo_dir/ferretserver.log" 2>&1 &
	echo $! >"$mongo_pidfile"
	for ((i = 0; i < 150; i++)); do
		mongo_accepts && break
		kill -0 "$(<"$mongo_pidfile")" 2>/dev/null || mongo_fail "ferretserver exited: $(tail -n 5 "$mongo_dir/ferretserver.log")"
		sleep 0.2
	done
	mongo_accepts || mongo_fail "ferretserver does not accept connections: $(tail -n 5 "$mongo_dir/ferretserver.log")"
	export GINSESSION_MONGO_URL="$url"
	echo "GINSESSION_MONGO_URL=$GINSESSION_MONGO_URL"
}

# stop_mongo stops the server that start_mongo started, by pid, and
# removes its files.
stop_mongo() {
	mongo_kill
	rm -rf "$mongo_dir"
}

# check_ferretserver runs vet, staticcheck and the tidy check on the
# ferretserver module, which the workspace's static checks don't cover.
check_ferretserver() {
	printf '\n==== %s ====\n' "vet, staticcheck, go mod tidy: store/mongostore/internal/ferretserver"
	(
		cd "$mongo_src/internal/ferretserver"
		export GOWORK=off
		go vet ./...
		go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
		go mod tidy -diff || mongo_fail "go.mod or go.sum of ferretserver is not tidy"
	)
	echo ok
}
