#!/usr/bin/env bash
# Runs a command in every Go module of the repository (every directory with a
# go.mod, outside node_modules), and fails at the end if any run failed.
# bench/peers, the peer comparison with its several hundred dependencies, is
# left out unless WITH_PEERS=1 (`make peers` runs it).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
while IFS= read -r mod; do
  dir=$(dirname "$mod")
  echo "== $dir: $*"
  if ! (cd "$dir" && "$@"); then
    failed+=("$dir")
  fi
done < <(find . -name go.mod -not -path '*/node_modules/*' | sort |
  if [ "${WITH_PEERS:-}" = 1 ]; then cat; else grep -v '^./bench/peers/'; fi)
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED in: ${failed[*]}" >&2
  exit 1
fi
