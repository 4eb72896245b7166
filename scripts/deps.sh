#!/usr/bin/env bash
# Brings up what the tests need on a fresh machine:
#  - the interop authorization server (node oidc-provider) with `npm ci`,
#  - Debian's redis-server, through apt-get, when it is missing,
#  - Debian's nginx and caddy, through apt-get, when they are missing (the
#    end-to-end tests of cmd/introspect-proxy run the proxy behind them).
# The packages are installed without starting their system services (a
# policy-rc.d answering 101 while apt-get runs): the tests start their own
# servers on free loopback ports, and nothing is left listening on port 80.
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

# has BINARY: the binary is on PATH or in /usr/sbin, where Debian puts nginx
# (outside the PATH of most users).
has() {
  command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]
}

apt_updated=
# apt_install BINARY PACKAGE...: installs the first PACKAGE apt-get can
# install, with no system service started, and checks that BINARY is there.
apt_install() {
  local bin=$1 status=0 policy=/usr/sbin/policy-rc.d created='' pkg
  shift
  if ! command -v apt-get >/dev/null; then
    missing "$bin is not installed and apt-get is not available: install $1 so that $bin is on PATH"
    return 0
  fi
  echo "deps: installing $bin with apt-get"
  # Keep the package from starting a system service: the tests start their own.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && created=1
  fi
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || status=$?
    [ $status = 0 ] && apt_updated=1
  fi
  if [ $status = 0 ]; then
    for pkg in "$@"; do
      status=0
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null || status=$?
      [ $status = 0 ] && break
    done
  fi
  [ -n "$created" ] && as_root rm -f "$policy"
  if [ $status != 0 ] || ! has "$bin"; then
    missing "apt-get could not install $bin (exit $status)"
  fi
}

listening80() {
  command -v ss >/dev/null && ss -Hltn 'sport = :80' | grep -q .
}

# not_serving NAME...: after an install, no process of these names runs and
# nothing new listens on port 80 (the packages' default sites).
not_serving() {
  local name pids
  for name in "$@"; do
    if pids=$(pgrep -x "$name" | tr '\n' ' ') && [ -n "$pids" ]; then
      missing "$name is running as a system service after its install (pids $pids): stop it, the tests start their own"
    fi
  done
  if [ -z "$port80_before" ] && listening80; then
    missing "something listens on port 80 after the install of $*: $(ss -Hltnp 'sport = :80' | tr -s ' ' | head -3)"
  fi
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
  apt_install redis-server redis-server
fi

if [ -d cmd/introspect-proxy ]; then
  installed=() port80_before=''
  listening80 && port80_before=1
  if ! has nginx; then
    apt_install nginx nginx nginx-light
    installed+=(nginx)
  fi
  if ! has caddy; then
    apt_install caddy caddy
    installed+=(caddy)
  fi
  if [ ${#installed[@]} -gt 0 ]; then
    not_serving "${installed[@]}"
  fi
fi
exit 0
