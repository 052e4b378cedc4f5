#!/usr/bin/env bash
# The cluster benchmark (issue 12): 3 nodes on one PostgreSQL, CLUSTER_CHANGES (200) admin
# writes of alternating kinds, the time until each node's proxy judges by the new
# configuration (p50/p99/max), and the rebuild time of a CLUSTER_CAS (1000) certificate
# trust store. See docs/BENCHMARKS.md ("Cluster propagation").
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -p certgate
exec timeout "${CLUSTER_TIMEOUT:-900}" python3 bench/lib/cluster.py
