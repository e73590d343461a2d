# shellcheck shell=bash
# Helpers shared by .ci/run and the scripts it sources (sentinel.bash,
# cluster6.bash). Sourcing it again is harmless.

# wait_for TRIES CMD...: runs CMD every 0.2 s until it succeeds, at most
# TRIES times.
wait_for() {
	local tries=$1 i
	shift
	for ((i = 0; i < tries; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# pong PORT succeeds if a Redis answers PING on 127.0.0.1:PORT.
pong() {
	[[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]]
}

# port_free PORT succeeds if no Redis answers there.
port_free() {
	! pong "$1"
}
