# table.awk turns benchstat's CSV output (-format csv -col /impl), the
# lost-update log and the wrk results into one markdown table. run.sh
# calls it as:
#
#	awk -f table.awk benchstat.csv lost.txt wrk.txt
#
# Each cell is benchstat's median over the runs.

BEGIN {
	FS = ","
	n = split("ginsession-redis ginsession-mem gincontrib-redis scs-redis floor floor-rmw gin", impls, " ")
	title["ginsession-redis"] = "ginsession + Redis"
	title["ginsession-mem"] = "ginsession + memstore"
	title["gincontrib-redis"] = "gin-contrib/sessions + redis"
	title["scs-redis"] = "scs + redisstore"
	title["floor"] = "floor: 1 go-redis command"
	title["floor-rmw"] = "floor: GETEX + CAS"
	title["gin"] = "bare gin"
	nr = split("none read write first-write cart-add cart login", routes, " ")
}

# benchstat.csv: a header row of contenders, a row of units, then rows
# of values, once per unit.
FILENAME == ARGV[1] {
	if (NF < 2) next
	if ($1 == "" && $2 !~ /\//) { for (i = 2; i <= NF; i++) head[i] = $i; next }
	if ($1 == "") { unit = $2; next }
	if ($1 == "geomean") next
	name = $1
	sub(/-[0-9]+$/, "", name) # the GOMAXPROCS suffix
	split(name, parts, "/")   # Serial, route=read
	mode = parts[1]; route = parts[2]; sub(/^route=/, "", route)
	for (i = 2; i <= NF; i++) if (head[i] != "" && $i != "") val[mode, route, unit, head[i]] = $i
	next
}

# lost.txt: "lost-update impl=X kept=N/40 ..." once per run.
FILENAME == ARGV[2] && /lost-update impl=/ {
	nf = split($0, fields, " ")
	for (i = 1; i <= nf; i++) { split(fields[i], kv, "="); f[kv[1]] = kv[2] }
	split(f["kept"], k, "/"); impl = f["impl"]
	if (!(impl in lo) || k[1] + 0 < lo[impl]) lo[impl] = k[1] + 0
	if (!(impl in hi) || k[1] + 0 > hi[impl]) hi[impl] = k[1] + 0
	of[impl] = k[2]
	next
}

# wrk.txt: "wrk store=redis|null rps=N p99=T".
FILENAME == ARGV[3] && /^wrk / {
	nf = split($0, fields, " ")
	for (i = 2; i <= nf; i++) { split(fields[i], kv, "="); w[kv[1]] = kv[2] }
	rps[w["store"]] = w["rps"]; p99[w["store"]] = w["p99"]
	next
}

function us(v) { return v == "" ? "—" : sprintf(v * 1e6 >= 100 ? "%.0f" : v * 1e6 >= 10 ? "%.1f" : "%.2f", v * 1e6) }
function num(v) { return v == "" ? "—" : sprintf("%g", v + 0) }
function row(label, mode, route, unit, fmt,    i, line, v) {
	line = "| " label
	for (i = 1; i <= n; i++) {
		v = val[mode, route, unit, impls[i]]
		line = line " | " (fmt == "us" ? us(v) : num(v))
	}
	print line " |"
}
# ratio prints ginsession + Redis against the faster of gin-contrib and
# scs, serial and parallel: below 1 is ahead.
function ratio(route,    m, g, a, b, out) {
	out = ""
	for (m = 1; m <= 2; m++) {
		mode = m == 1 ? "Serial" : "Parallel"
		g = val[mode, route, "sec/op", "ginsession-redis"]
		a = val[mode, route, "sec/op", "gincontrib-redis"]
		b = val[mode, route, "sec/op", "scs-redis"]
		if (g == "" || a == "" || b == "") return
		out = out (m == 2 ? " / " : "") sprintf("%.2f×", g / (a + 0 < b + 0 ? a : b))
	}
	printf "| %s: ginsession + Redis ÷ faster of gin-contrib and scs (serial / parallel) | %s |  |  |  |  |  |  |\n", route, out
}

END {
	line = "| per request"; sep = "| ---"
	for (i = 1; i <= n; i++) { line = line " | " title[impls[i]]; sep = sep " | ---:" }
	print line " |"; print sep " |"
	for (r = 1; r <= nr; r++) {
		rt = routes[r]
		row(rt ": store round trips", "Serial", rt, "trips/op", "num")
		row(rt ": allocs/op", "Serial", rt, "allocs/op", "num")
		row(rt ": B/op", "Serial", rt, "B/op", "num")
		row(rt ": µs/op", "Serial", rt, "sec/op", "us")
		row(rt ", parallel: µs/op", "Parallel", rt, "sec/op", "us")
		row(rt ", parallel: CPU µs/op", "Parallel", rt, "cpu-sec/op", "us")
		ratio(rt)
	}
	line = "| 40 concurrent cart adds on one session: kept"
	for (i = 1; i <= n; i++) {
		impl = impls[i]
		if (!(impl in lo)) { line = line " | —"; continue }
		line = line " | " (lo[impl] == hi[impl] ? lo[impl] : lo[impl] "–" hi[impl]) "/" of[impl]
	}
	print line " |"
	if ("redis" in rps) {
		print ""
		print "| example app, wrk, 16 connections, GET / with a session | requests/s | p99 latency |"
		print "| --- | ---: | ---: |"
		printf "| ginsession on Redis (-store redis) | %s | %s |\n", rps["redis"], p99["redis"]
		printf "| sessions switched off (-store null) | %s | %s |\n", rps["null"], p99["null"]
	}
}
