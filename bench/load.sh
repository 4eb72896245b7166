#!/usr/bin/env bash
# Load test on loopback (make loadtest): the stub authorization server, a bare
# net/http server, the same server behind the introspect middleware, and
# Apache httpd with mod_auth_openidc, under the same wrk scenarios. Prints a
# Markdown table and writes it to bench/results/latest.md.
#
# Environment: DURATION (per run, default 10s), CONNECTIONS (64), LATENCY
# (stub AS latency, 5ms), APACHE (auto|on|off), SCENARIOS
# (cached,cycled,invalid,herd), ROUNDS (1; figures are medians over rounds),
# SERVERS (the servers to measure, comma-separated; default all).
# PROXY=on adds cmd/introspect-proxy in reverse-proxy mode and in forward-auth
# mode behind nginx (auth_request), a bare httputil.ReverseProxy and nginx
# alone, all in front of one backend (nginx comes from scripts/deps.sh).
# OATHKEEPER=on adds Ory Oathkeeper's proxy (oauth2_introspection) in front of
# the same backend, built from bench/peers' module graph.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v apache2 >/dev/null || need+=(apache2)
[ -e /usr/lib/apache2/modules/mod_auth_openidc.so ] || need+=(libapache2-mod-auth-openidc)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "load.sh: installing ${need[*]} with apt-get" >&2
    # policy-rc.d, where present, keeps the packaged apache2 service stopped;
    # this script never uses it (it runs its own httpd as nobody).
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2; }
  else
    echo "load.sh: missing ${need[*]}, and apt-get is unavailable here (or this is not root)." >&2
    echo "load.sh: install them with your package manager (Debian: apt-get install wrk apache2 libapache2-mod-auth-openidc)." >&2
    if ! command -v wrk >/dev/null; then
      exit 1
    fi
    echo "load.sh: running without Apache." >&2
    APACHE=off
  fi
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/stubas ./cmd/server ./cmd/loadrun
oathkeeper=''
if [ "${PROXY:-off}" = on ]; then
  (cd ../cmd/introspect-proxy && go build -o "$bin/" .)
fi
if [ "${OATHKEEPER:-off}" = on ]; then
  echo "load.sh: building Ory Oathkeeper (go build github.com/ory/oathkeeper in bench/peers)" >&2
  (cd peers && go build -o "$bin/oathkeeper" github.com/ory/oathkeeper)
  oathkeeper=$bin/oathkeeper
fi
echo "load.sh: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin/loadrun" -bin "$bin" \
  -duration "${DURATION:-10s}" -connections "${CONNECTIONS:-64}" -latency "${LATENCY:-5ms}" \
  -apache "${APACHE:-auto}" -scenarios "${SCENARIOS:-cached,cycled,invalid,herd}" \
  -rounds "${ROUNDS:-1}" -proxy "${PROXY:-off}" -oathkeeper "$oathkeeper" -servers "${SERVERS:-}" \
  -out results/latest.md -command "${COMMAND:-make loadtest}"
