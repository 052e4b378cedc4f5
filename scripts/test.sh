#!/usr/bin/env bash
# Runs every test of the workspace.
#
# The tests drive real programs: openssl and curl (clients), nginx (a load balancer in front of
# certgate), PostgreSQL (the cluster store), Chromium with ChromeDriver (the web console). When
# one is missing this script says which and installs it from Debian's packages with apt-get,
# which needs root or sudo. Then it runs `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_pg() {
  have initdb && have pg_ctl && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

need=()
have openssl || need+=(openssl)
have curl || need+=(curl)
have nginx || need+=(nginx)
have_pg || need+=(postgresql)
have chromium || need+=(chromium)
have chromedriver || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test.sh: the tests need ${need[*]}; installing from Debian's packages (apt-get)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The tests talk to loopback only; a proxy from the environment would intercept curl and
# reqwest clients (the tests clear these for the processes they start, too).
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy

cargo test --workspace "$@"
