#!/usr/bin/env bash
# Checks that every library module of this repository can be fetched with
# go get and built by a program outside it, as if it had been tagged, from
# any directory:
#
#   bash .ci/release-check.bash
#
# 1. It publishes the library modules (the root module, store/sqlstore,
#    store/mongostore and otel) at a test version, $RELEASE_CHECK_VERSION
#    (v0.999.0 by default), into a module proxy in a temporary directory:
#    <module path>/@v/list, .info, .mod and .zip, zipped by .ci/modproxy
#    with golang.org/x/mod/zip, the go command's own code, so that a
#    module's zip leaves out its nested modules (the root's holds no
#    store/sqlstore/, mongostore's no internal/ferretserver/). Each
#    submodule's go.mod is published with its requirement on the root
#    module moved to the test version, the step RELEASING.md takes before
#    tagging a submodule; modproxy fails if a go.mod has a replace
#    directive or requires one of these modules at a version that will
#    never be tagged.
# 2. Then, in a temporary directory outside the repository, with GOWORK=off
#    and GOFLAGS=-mod=mod, a module cache of its own (so that the test
#    version never reaches the machine's) and
#    GOPROXY=file://<proxy>,file://<the machine's module cache>,https://proxy.golang.org
#    (GONOSUMDB for our modules only: the checksum database has never seen
#    them), it writes one small program per store: memstore, redisstore,
#    filestore, memcachedstore and nullstore from the root module, sqlstore
#    (PostgreSQL, MySQL, and SQLite through sqlitedb), mongostore, and otel
#    (its Observer on a memstore). Each constructs its store and the
#    middleware, ginsession.New(ginsession.Options{Store: ...}). For each:
#    go mod init, go get <its module>@<test version> (the root module comes
#    in through the submodule's own requirement), go mod tidy, go build,
#    and it runs the program, which serves a request that leaves the
#    session alone (200, no cookie) and, where the store needs no server, a
#    write and a read back through the store. No replace, no go.work: the
#    script fails if any step fails, if a program's go.mod has a replace,
#    or if any of our modules resolves to another version than the test
#    one.
#
# Every module of go.work must be listed below, as published or not. The
# script starts no server and leaves nothing behind (its temporary
# directory, with the module cache in it, is removed on exit); running it
# twice does the same thing twice.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

VERSION="${RELEASE_CHECK_VERSION:-v0.999.0}"
ROOT=github.com/ginsession/ginsession
# The modules that are tagged and fetched with go get (RELEASING.md), by
# directory, and those that are not.
PUBLISHED=(. store/sqlstore store/mongostore otel)
UNPUBLISHED=(example bench)
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

step() {
	printf -- '-- %s\n' "$*"
}

tmp=""
cleanup() {
	[[ -n "$tmp" && -d "$tmp" ]] || return 0
	# The module cache is read-only; go clean empties it.
	if [[ -d "$tmp/modcache" ]]; then
		GOMODCACHE="$tmp/modcache" go clean -modcache >/dev/null 2>&1 || chmod -R u+w "$tmp/modcache"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS

step "every module of go.work is listed as published or not"
declare -A listed=()
for dir in "${PUBLISHED[@]}" "${UNPUBLISHED[@]}"; do
	listed[$dir]=1
done
declare -A inwork=()
while read -r dir; do
	rel=${dir#"$repo"}
	rel=${rel#/}
	rel=${rel:-.}
	inwork[$rel]=1
	[[ -n "${listed[$rel]:-}" ]] ||
		fail "module $rel is in go.work but .ci/release-check.bash doesn't say whether it is published: add it to PUBLISHED (and RELEASING.md) or UNPUBLISHED"
done < <(GOWORK="$repo/go.work" go list -m -f '{{.Dir}}')
for dir in "${PUBLISHED[@]}"; do
	[[ -n "${inwork[$dir]:-}" ]] || fail "published module $dir is not in go.work"
done
echo "published: ${PUBLISHED[*]}; not published: ${UNPUBLISHED[*]}"

# The machine's module cache, as a proxy for what it holds already.
real_modcache=$(go env GOMODCACHE)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ginsession-release-check.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
[[ "$tmp/" != "$(pwd -P)/"* ]] || fail "the temporary directory $tmp is inside the repository; set TMPDIR elsewhere"

step "vet, staticcheck, go mod tidy: .ci/modproxy"
(
	cd .ci/modproxy
	export GOWORK=off
	go vet ./...
	go run "$STATICCHECK" ./...
	go mod tidy -diff || fail "go.mod or go.sum of .ci/modproxy is not tidy; run go mod tidy there"
)

step "publish at $VERSION to file://$tmp/proxy"
module_dirs=()
for dir in "${PUBLISHED[@]}"; do
	module_dirs+=("$repo/$dir")
done
(cd .ci/modproxy && GOWORK=off go run . -version "$VERSION" -o "$tmp/proxy" "${module_dirs[@]}")

# The consumers' environment: no workspace, no replace, our modules from
# the file proxy and nothing from the machine's module cache but through
# GOPROXY.
export GOWORK=off
export GOFLAGS=-mod=mod
export GOMODCACHE="$tmp/modcache"
export GOPROXY="file://$tmp/proxy,file://$real_modcache/cache/download,https://proxy.golang.org"
export GONOSUMDB="$ROOT"
export GOPRIVATE="" GONOPROXY="" GOINSECURE=""

# The file every consumer shares: check serves requests through the
# middleware.
serve_go='package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

// check serves a request that leaves the session alone through the
// middleware: 200, no cookie, no store round trip. With roundTrip it
// also writes a value, which needs a working store, and reads it back.
func check(opts ginsession.Options, roundTrip bool) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(ginsession.New(opts))
	r.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.POST("/n", func(c *gin.Context) {
		if err := ginsession.Set(c, "n", 42); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/n", func(c *gin.Context) {
		n, err := ginsession.Get[int](c, "n")
		if err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "%d", n)
	})

	w := do(r, http.MethodGet, "/", nil)
	if w.Code != http.StatusOK || len(w.Result().Cookies()) != 0 {
		fail("GET / (session untouched): %d, cookies %v", w.Code, w.Result().Cookies())
	}
	if roundTrip {
		w = do(r, http.MethodPost, "/n", nil)
		cookies := w.Result().Cookies()
		if w.Code != http.StatusNoContent || len(cookies) != 1 {
			fail("POST /n: %d %q, cookies %v", w.Code, w.Body, cookies)
		}
		w = do(r, http.MethodGet, "/n", cookies[0])
		if w.Code != http.StatusOK || w.Body.String() != "42" {
			fail("GET /n: %d %q, want 200 \"42\"", w.Code, w.Body)
		}
	}
	fmt.Println("ok")
}

func do(h http.Handler, method, target string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
'

# consumer NAME MODULE... reads main.go from standard input and checks,
# in $tmp/consumers/NAME, that a program made of it and serve_go gets
# MODULE... at $VERSION, tidies, builds and runs.
consumer() {
	local name=$1
	shift
	local dir="$tmp/consumers/$name" mods=() m t0=$SECONDS
	for m in "$@"; do
		mods+=("$m@$VERSION")
	done
	mkdir -p "$dir"
	cat >"$dir/main.go"
	printf '%s' "$serve_go" >"$dir/serve.go"
	(
		cd "$dir"
		go mod init "example.com/consumer/$name"
		go get "${mods[@]}"
		go mod tidy
		# -trimpath keeps this run's module cache directory out of the
		# build cache's keys, so that the next run reuses the packages.
		go build -trimpath -o "$tmp/bin/$name" .
		"$tmp/bin/$name"
		! grep -Eq '^[[:space:]]*replace\b' go.mod || fail "$name: go.mod has a replace directive"
		local wrong
		wrong=$(go list -m -f '{{.Path}} {{.Version}}{{with .Replace}} => {{.Replace.Path}} {{.Replace.Version}}{{end}}' all |
			grep "^$ROOT[ /]" | grep -v " $VERSION\$" || true)
		[[ -z "$wrong" ]] || fail "$name: our modules resolve to other versions than $VERSION:"$'\n'"$wrong"
	) >"$dir.log" 2>&1 || {
		cat "$dir.log" >&2
		fail "consumer $name: go get, go mod tidy, go build or the program failed (above)"
	}
	printf '%-15s %3d s  %s\n' "$name" $((SECONDS - t0)) \
		"$(go -C "$dir" list -m -f '{{.Path}}@{{.Version}}' all | grep "^$ROOT[@/]" | tr '\n' ' ')"
}

step "consumers in $tmp/consumers: go get, go mod tidy, go build, run"

consumer memstore "$ROOT" <<'EOF'
package main

import (
	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memstore"
)

func main() {
	check(ginsession.Options{Store: memstore.New()}, true)
}
EOF

consumer redisstore "$ROOT" <<'EOF'
package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/redisstore"
)

func main() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	check(ginsession.Options{Store: redisstore.New(client)}, false)
}
EOF

consumer filestore "$ROOT" <<'EOF'
package main

import (
	"log"
	"os"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/filestore"
)

func main() {
	dir, err := os.MkdirTemp("", "filestore")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := filestore.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	check(ginsession.Options{Store: store}, true)
}
EOF

consumer memcachedstore "$ROOT" <<'EOF'
package main

import (
	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/memcachedstore"
)

func main() {
	check(ginsession.Options{Store: memcachedstore.New("127.0.0.1:11211")}, false)
}
EOF

consumer nullstore "$ROOT" <<'EOF'
package main

import (
	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/nullstore"
)

func main() {
	check(ginsession.Options{Store: nullstore.New()}, false)
}
EOF

consumer sqlstore "$ROOT/store/sqlstore" <<'EOF'
package main

import (
	"context"
	"database/sql"
	"log"
	"os"
	"path/filepath"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/sqlstore"
	"github.com/ginsession/ginsession/store/sqlstore/sqlitedb"
)

func main() {
	// PostgreSQL and MySQL: constructed (the driver tells the dialect),
	// never connected.
	pg, err := sql.Open("pgx", "postgres://app@127.0.0.1:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pg.Close()
	pgStore, err := sqlstore.New(pg)
	if err != nil {
		log.Fatal(err)
	}
	check(ginsession.Options{Store: pgStore}, false)

	my, err := sql.Open("mysql", "app@tcp(127.0.0.1:3306)/app?interpolateParams=true")
	if err != nil {
		log.Fatal(err)
	}
	defer my.Close()
	myStore, err := sqlstore.New(my, sqlstore.WithTable("myapp_sessions"))
	if err != nil {
		log.Fatal(err)
	}
	check(ginsession.Options{Store: myStore}, false)

	// SQLite, in a file: used.
	dir, err := os.MkdirTemp("", "sqlitedb")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlitedb.Open(filepath.Join(dir, "sessions.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(context.Background()); err != nil {
		log.Fatal(err)
	}
	check(ginsession.Options{Store: store}, true)
}
EOF

consumer mongostore "$ROOT/store/mongostore" <<'EOF'
package main

import (
	"context"
	"log"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/mongostore"
)

func main() {
	// Connect does not reach the server; nothing here does.
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:27017/"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	store := mongostore.New(client.Database("shop").Collection("sessions"))
	check(ginsession.Options{Store: store}, false)
}
EOF

consumer otel "$ROOT/otel" <<'EOF'
package main

import (
	"github.com/ginsession/ginsession"
	ginsessionotel "github.com/ginsession/ginsession/otel"
	"github.com/ginsession/ginsession/store/memstore"
)

func main() {
	check(ginsession.Options{
		Store:    memstore.New(),
		Observer: ginsessionotel.New(ginsessionotel.WithStoreName("memory")),
	}, true)
}
EOF

echo "release check passed in $((SECONDS - start)) s"
