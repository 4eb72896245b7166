#!/usr/bin/env bash
# Brings up what the tests need on a fresh machine:
#  - the interop authorization server (node oidc-provider) with `npm ci`,
#  - Debian's redis-server, through apt-get, when it is missing.
# Under CI=true a missing piece is an error; elsewhere it is a warning, and the
# tests that need it say so.
set -euo pipefail
cd "$(dirname "$0")/.."

missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "deps: $*" >&2
    exit 1
  fi
  echo "deps: WARNING: $*" >&2
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

if [ -f interop/package-lock.json ]; then
  if command -v npm >/dev/null && command -v node >/dev/null; then
    if [ ! -d interop/node_modules ] || [ interop/package-lock.json -nt interop/node_modules ]; then
      (cd interop && npm ci --no-audit --no-fund --loglevel=error)
    fi
  else
    missing "node and npm are needed for the interop tests (Debian: apt-get install nodejs npm)"
  fi
fi

if [ -d cache/redis ] && ! command -v redis-server >/dev/null; then
  if command -v apt-get >/dev/null; then
    echo "deps: installing redis-server with apt-get"
    # Keep the package from starting a system service: the tests start their own.
    policy=/usr/sbin/policy-rc.d
    created=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && created=1
    fi
    status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || status=$?
    if [ $status = 0 ]; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null || status=$?
    fi
    [ -n "$created" ] && as_root rm -f "$policy"
    if [ $status != 0 ] || ! command -v redis-server >/dev/null; then
      missing "apt-get could not install redis-server (exit $status)"
    fi
  else
    missing "redis-server is not installed and apt-get is not available: install Redis so that redis-server is on PATH"
  fi
fi
exit 0
