#!/usr/bin/env bash
# Load test on loopback (make loadtest): the stub authorization server, a bare
# net/http server, the same server behind the introspect middleware, and
# Apache httpd with mod_auth_openidc, under the same wrk scenarios. Prints a
# Markdown table and writes it to bench/results/latest.md.
#
# Order: every round of every scenario on the servers other than Apache (the
# Go servers, introspect-proxy, Oathkeeper, nginx) runs first, Apache's
# rounds after them: Apache's 2x64 threads leave the 2-core machine at a
# 1-minute load of 3 to 14, which must not land on a Go server's run. Before
# each round (one scenario on one group of servers, back to back) the driver
# waits until the 1-minute load average is below SETTLE_LOAD, for at most
# SETTLE_MAX, and the report gives the load each round started at, each
# server's ratios to bare net/http in the same round, and their median,
# minimum and maximum. A round raises the load average itself, and the
# 1-minute figure decays by a factor e a minute, so the wait adds up to
# SETTLE_MAX to every round; the report says how many waits reached it.
#
# Environment: DURATION (per run, default 10s), CONNECTIONS (64), LATENCY
# (stub AS latency, 5ms), APACHE (auto|on|off), SCENARIOS
# (cached,cycled,invalid,herd), ROUNDS (1; figures are medians over rounds),
# SERVERS (the servers to measure, comma-separated; default all),
# SETTLE_LOAD (default 0.5 per core: 1.0 on 2 cores), SETTLE_MAX (90s; 0 to
# start every round at once and only record the load).
# PROXY=on adds cmd/introspect-proxy in reverse-proxy mode (proxy-reverse)
# and in forward-auth mode behind nginx's auth_request, over loopback TCP
# (nginx+proxy-fwd) and over a unix socket (nginx+proxy-unix), with a bare
# httputil.ReverseProxy (httputil-rp) and nginx alone (nginx), all in front
# of one backend (nginx comes from scripts/deps.sh).
# FLOORS=on (with PROXY=on) adds the floors of one hop, the bench server's
# floor-* modes, in front of the same backend: a pooled
# httputil.ReverseProxy on net/http's server and transport (floor-rp), the
# same with a transport that reads each answer on the asking goroutine
# (floor-rp-rt), the same on a plain loop over http.ReadRequest
# (floor-rp-loop), and nginx's auth_request to a trivial handler on
# net/http's server (nginx+floor-auth), on that loop
# (nginx+floor-auth-loop), and on a loop that parses nothing and writes a
# canned 200 (nginx+floor-auth-raw), the floor of any forward-auth endpoint.
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
settle=(-settle-max "${SETTLE_MAX:-90s}")
if [ -n "${SETTLE_LOAD:-}" ]; then
  settle+=(-settle-load "$SETTLE_LOAD")
fi
"$bin/loadrun" -bin "$bin" "${settle[@]}" \
  -duration "${DURATION:-10s}" -connections "${CONNECTIONS:-64}" -latency "${LATENCY:-5ms}" \
  -apache "${APACHE:-auto}" -scenarios "${SCENARIOS:-cached,cycled,invalid,herd}" \
  -rounds "${ROUNDS:-1}" -proxy "${PROXY:-off}" -floors "${FLOORS:-off}" -oathkeeper "$oathkeeper" -servers "${SERVERS:-}" \
  -out results/latest.md -command "${COMMAND:-make loadtest}"
