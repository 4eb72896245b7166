#!/usr/bin/env bash
# Runs a command in every Go module of the repository (every directory with a
# go.mod, outside node_modules), and fails at the end if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
while IFS= read -r mod; do
  dir=$(dirname "$mod")
  echo "== $dir: $*"
  if ! (cd "$dir" && "$@"); then
    failed+=("$dir")
  fi
done < <(find . -name go.mod -not -path '*/node_modules/*' | sort)
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED in: ${failed[*]}" >&2
  exit 1
fi
