#!/usr/bin/env bash
# gofmt, tidy modules, go vet and staticcheck over every module.
set -euo pipefail
cd "$(dirname "$0")/.."
staticcheck=$1
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
# Every module's go.mod and go.sum must be tidy: with `replace ../..`, a new
# core dependency needs go.sum entries in every module that uses the core.
scripts/each-module.sh go mod tidy -diff
scripts/each-module.sh go vet ./...
scripts/each-module.sh go run "$staticcheck" ./...
