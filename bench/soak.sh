#!/usr/bin/env bash
# Soak on loopback (make soak): a steady stream of requests at a server behind
# the introspect middleware, whose authorization server fails a share of its
# calls; every answer is checked and the server's heap is followed. Exits
# non-zero on any wrong answer. Writes bench/results/soak.md.
#
# Environment: DURATION (default 10m; 30s to check it works), RATE (1000
# req/s), TOKENS (10000), FAIL_RATE (0.05).
set -euo pipefail
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/server ./cmd/soak
echo "soak.sh: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin/soak" -server-bin "$bin/server" \
  -duration "${DURATION:-10m}" -rate "${RATE:-1000}" -tokens "${TOKENS:-10000}" -fail-rate "${FAIL_RATE:-0.05}" \
  -out results/soak.md -command "${COMMAND:-make soak}"
