#!/usr/bin/env bash
# Compares the root package's micro-benchmarks on the working tree with those
# of a git ref (default HEAD), COUNT runs each (default 10), and prints a
# benchstat table with confidence intervals:
#
#   make bench-compare REF=main~3 BENCH='BenchmarkMiddleware' COUNT=10
#
# The ref is checked out into a temporary worktree; the runs alternate
# between the two trees so that a change of load on the machine falls on both.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:-HEAD}
bench=${2:-.}
count=${3:-10}
benchtime=${BENCHTIME:-1s}
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

if ! git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
  echo "bench-compare: $ref is not a commit" >&2
  exit 1
fi
tmp=$(mktemp -d)
cleanup() {
  git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
git worktree add --detach --quiet "$tmp/base" "$ref"

# One test binary per tree, built once.
go test -c -o "$tmp/new.test" . >/dev/null
(cd "$tmp/base" && go test -c -o "$tmp/old.test" . >/dev/null)

echo "bench-compare: $bench, $ref (old) against the working tree (new), $count rounds of $benchtime" >&2
for i in $(seq "$count"); do
  (cd "$tmp/base" && "$tmp/old.test" -test.run '^$' -test.bench "$bench" -test.benchmem -test.benchtime "$benchtime" -test.count 1) >>"$tmp/old.txt"
  "$tmp/new.test" -test.run '^$' -test.bench "$bench" -test.benchmem -test.benchtime "$benchtime" -test.count 1 >>"$tmp/new.txt"
  echo "bench-compare: round $i of $count" >&2
done
go run "$benchstat" old="$tmp/old.txt" new="$tmp/new.txt"
