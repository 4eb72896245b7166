#!/usr/bin/env bash
# Checks what consumers get from a release, before any tag is pushed.
#
# Publishes every library module of the working tree (the root, adapters/gin,
# adapters/echo, adapters/grpc, cache/redis, otel) at one version (first
# argument, else $VERSION, else v1.0.0-rc.0) into a module proxy in a temporary
# directory, as tags would publish them: each dependent go.mod requires the
# root at that version and has no replace directive (scripts/releaseproxy).
# Then, for each module, a new consumer module outside the repository runs
# plain `go get MODULE@VERSION`, builds and runs a small program using the
# module's constructor, and for a dependent module runs `go vet MODULE/...`
# (its own tests compile against the published root). No replace, no go.work,
# and a module cache of its own: our modules come only from the temporary
# proxy; third-party ones from the local download cache or else the usual
# GOPROXY. The checksum database is not asked about github.com/introspect-go
# modules.
#
# Fails, naming the module, when a consumer does not build. KEEP=1 keeps the
# temporary directory (proxy, consumers, logs) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)

version=${1:-${VERSION:-v1.0.0-rc.0}}
root_module=github.com/introspect-go/introspect

# Library modules, published with one tag each; the root first.
published=(. adapters/gin adapters/echo adapters/grpc cache/redis otel)
# Modules of the repository that are never published. cmd/introspect-proxy
# is a program built from the working tree (its go.mod replaces the library
# modules by their directories, which `go install MODULE@VERSION` refuses):
# `go -C cmd/introspect-proxy install .` from a clone, or its image.
unpublished_re='^(examples/[^/]+|interop|bench|bench/peers|scripts/releaseproxy|cmd/introspect-proxy)$'

fail() {
  echo "release-check: FAILED: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "go is not on PATH"
git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  fail "$repo is not a git working tree: the published files are those git would commit"

# Every module must be either published or known as unpublished, so that a new
# module is not forgotten by the release.
while IFS= read -r gomod; do
  dir=$(dirname "${gomod#./}")
  listed=
  for p in "${published[@]}"; do
    [ "$p" = "$dir" ] && listed=1
  done
  if [ -z "$listed" ] && ! [[ "$dir" =~ $unpublished_re ]]; then
    fail "$dir/go.mod is a module that scripts/release-check.sh neither publishes nor lists as unpublished: add it to one of the two (and to RELEASING.md)"
  fi
done < <(find . -name go.mod -not -path '*/node_modules/*' -not -path './.git/*' | sort)

default_proxy=$(go env GOPROXY)
download_cache="$(go env GOMODCACHE)/cache/download"

work=$(mktemp -d "${TMPDIR:-/tmp}/release-check.XXXXXX")
work=$(cd "$work" && pwd -P)
cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    echo "release-check: kept $work"
  else
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

proxy="$work/proxy"
echo "== publishing the working tree's modules at $version into $proxy"
(cd scripts/releaseproxy && go build -o "$work/releaseproxy" .) ||
  fail "could not build scripts/releaseproxy"
"$work/releaseproxy" -repo "$repo" -version "$version" -out "$proxy" "${published[@]}" ||
  fail "could not publish the modules at $version (see above)"

goproxy="file://$proxy"
if [ -d "$download_cache" ]; then
  goproxy="$goproxy,file://$download_cache"
fi
goproxy="$goproxy,$default_proxy"

# The consumers' Go environment: nothing from the repository or the usual
# module cache; GOFLAGS replaced whole. -trimpath keeps the temporary module
# cache's path out of the build cache's keys, so the next run reuses the
# compiled packages.
consumer_env=(
  env
  GOPATH="$work/gopath"
  GOMODCACHE="$work/gopath/pkg/mod"
  GOPROXY="$goproxy"
  GONOSUMDB=github.com/introspect-go
  GOPRIVATE=
  GONOPROXY=
  GOFLAGS="-mod=mod -modcacherw -trimpath"
  GOWORK=off
)

# consumer_main DIR prints the program a consumer of the module in DIR builds.
consumer_main() {
  case "$1" in
  .)
    cat <<'EOF'
package main

import (
	"fmt"
	"log"
	"net/http"

	"github.com/introspect-go/introspect"
)

func main() {
	cache, err := introspect.NewLRUCache(1000)
	if err != nil {
		log.Fatal(err)
	}
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
		introspect.WithCache(cache),
	)
	if err != nil {
		log.Fatal(err)
	}
	var h http.Handler = mw.Handler(http.NotFoundHandler())
	fmt.Printf("ok: %T\n", h)
}
EOF
    ;;
  adapters/gin)
    cat <<'EOF'
package main

import (
	"fmt"
	"log"

	"github.com/gin-gonic/gin"

	"github.com/introspect-go/introspect"
	introspectgin "github.com/introspect-go/introspect/adapters/gin"
)

func main() {
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
	)
	if err != nil {
		log.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(introspectgin.Authenticate(mw))
	r.GET("/me", introspectgin.RequireScope(mw, "read"), func(c *gin.Context) {
		ti, _ := introspectgin.FromContext(c)
		c.JSON(200, gin.H{"sub": ti.Subject})
	})
	fmt.Printf("ok: %d route\n", len(r.Routes()))
}
EOF
    ;;
  adapters/echo)
    cat <<'EOF'
package main

import (
	"fmt"
	"log"

	"github.com/labstack/echo/v4"

	"github.com/introspect-go/introspect"
	introspectecho "github.com/introspect-go/introspect/adapters/echo"
)

func main() {
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
	)
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.Use(introspectecho.Authenticate(mw))
	e.GET("/me", func(c echo.Context) error {
		ti, _ := introspectecho.FromContext(c)
		return c.JSON(200, map[string]string{"sub": ti.Subject})
	}, introspectecho.RequireScope(mw, "read"))
	fmt.Printf("ok: %d route\n", len(e.Routes()))
}
EOF
    ;;
  adapters/grpc)
    cat <<'EOF'
package main

import (
	"fmt"
	"log"

	"google.golang.org/grpc"

	"github.com/introspect-go/introspect"
	introspectgrpc "github.com/introspect-go/introspect/adapters/grpc"
)

func main() {
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
	)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := introspectgrpc.New(mw, introspectgrpc.WithMethodScopes(map[string][]string{
		"/example.v1.Things/Delete": {"admin"},
	}))
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(auth.Unary()), grpc.StreamInterceptor(auth.Stream()))
	defer srv.Stop()
	fmt.Printf("ok: %T\n", srv)
}
EOF
    ;;
  cache/redis)
    cat <<'EOF'
package main

import (
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
)

func main() {
	// No connection is made: nothing here talks to Redis.
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer rdb.Close()
	remote, err := introspectredis.New(rdb, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		log.Fatal(err)
	}
	local, err := introspect.NewLRUCache(1000)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := introspectredis.NewTwoTier(remote, local, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
		introspect.WithCache(cache),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ok: %T\n", mw)
}
EOF
    ;;
  otel)
    cat <<'EOF'
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/introspect-go/introspect"
	introspectotel "github.com/introspect-go/introspect/otel"
)

func main() {
	// The global meter and tracer providers: no-op until the program sets them.
	hooks, err := introspectotel.New(introspectotel.WithEndpointHostAttribute())
	if err != nil {
		log.Fatal(err)
	}
	mine := &introspect.Hooks{CacheMiss: func(context.Context) {}}
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
		introspect.WithHooks(introspect.Chain(mine, hooks)),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ok: %T\n", mw)
}
EOF
    ;;
  *)
    return 1
    ;;
  esac
}

# step DIR LOG COMMAND...: runs COMMAND in the consumer directory DIR with the
# consumers' environment, its output appended to LOG.
step() {
  local dir=$1 log=$2
  shift 2
  echo "\$ $*" >>"$log"
  (cd "$dir" && "${consumer_env[@]}" "$@") >>"$log" 2>&1
}

# consume DIR MODULE LOG: a new module outside the repository using MODULE (in
# DIR of the repository) at $version; the go commands' output goes to LOG.
consume() {
  local dir=$1 module=$2 log=$3 consumer
  consumer="${log%.log}"
  mkdir -p "$consumer"
  if ! consumer_main "$dir" >"$consumer/main.go"; then
    echo "no consumer program for $dir in scripts/release-check.sh" >>"$log"
    return 1
  fi
  step "$consumer" "$log" go mod init "example.com/consumer/$(basename "$consumer")" &&
    step "$consumer" "$log" go get "$module@$version" &&
    step "$consumer" "$log" go build -o consumer . &&
    step "$consumer" "$log" ./consumer ||
    return 1
  # A dependent module's tests build in the repository against the local root
  # (replace); here they compile against the published one, as `go test all`
  # in a consumer does. The root's own tests see no difference.
  if [ "$dir" != . ]; then
    step "$consumer" "$log" go vet "$module/..." || return 1
  fi
  # Every one of our modules in the build must be the published one.
  local resolved wrong
  resolved=$(cd "$consumer" && "${consumer_env[@]}" go list -m \
    -f '{{.Path}} {{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}' all) || return 1
  wrong=$(awk -v m="$root_module" -v v="$version" \
    '($1 == m || index($1, m "/") == 1) && ($2 != v || NF > 2)' <<<"$resolved")
  if [ -n "$wrong" ]; then
    echo "expected every $root_module module at $version, the build has:" >>"$log"
    echo "$wrong" >>"$log"
    return 1
  fi
}

echo "== consumers (GOPROXY=$goproxy)"
failed=()
for dir in "${published[@]}"; do
  start=$SECONDS
  module=$root_module name=root
  if [ "$dir" != . ]; then
    module="$root_module/$dir" name=${dir//\//-}
  fi
  log="$work/consumers/$name.log"
  mkdir -p "$work/consumers"
  : >"$log"
  if consume "$dir" "$module" "$log"; then
    echo "ok   $module@$version ($((SECONDS - start))s)"
  else
    echo "FAIL $module@$version ($((SECONDS - start))s):"
    grep -v -E '^go: (downloading|added) ' "$log" | sed 's/^/    /'
    failed+=("$module")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo >&2
  for m in "${failed[@]}"; do
    echo "release-check: FAILED: a consumer of $m@$version does not build with the modules as published (no replace); see its go output above" >&2
  done
  echo "release-check: KEEP=1 keeps the proxy, the consumers and their full logs" >&2
  exit 1
fi

# What the repository still has to change before tagging.
for dir in "${published[@]}"; do
  [ "$dir" = . ] && continue
  required=$(awk -v m="$root_module" '$1 == m && $2 ~ /^v/ {print $2} $1 == "require" && $2 == m {print $3}' "$dir/go.mod")
  if [ -n "$required" ] && [ "$required" != "$version" ]; then
    echo "note: $dir/go.mod requires $root_module $required; before tagging $dir/$version it must require $version (RELEASING.md)"
  fi
done
tags=()
for dir in "${published[@]}"; do
  if [ "$dir" = . ]; then tags+=("$version"); else tags+=("$dir/$version"); fi
done
echo "release-check: OK: ${#published[@]} modules at $version, every consumer built without replace (${SECONDS}s); tags: ${tags[*]}"
