#!/usr/bin/env bash
# gofmt, go vet and staticcheck over every module.
set -euo pipefail
cd "$(dirname "$0")/.."
staticcheck=$1
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
scripts/each-module.sh go vet ./...
scripts/each-module.sh go run "$staticcheck" ./...
