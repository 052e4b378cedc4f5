#!/usr/bin/env bash
# certgate beside nginx and haproxy: the whole benchmark in one command.
#
#   bench/run.sh                                  # full run (about 16 minutes)
#   BENCH_DURATION=2 BENCH_REPS=1 bench/run.sh    # smoke run
#
# Installs nginx, haproxy (and the other tools it needs) from Debian's packages when
# missing, builds certgate and the load generator in release mode, generates the PKI
# (cached in bench/results/pki), then hands over to bench/lib/bench.py, which starts every
# process, runs the scenarios and prints the summary. Raw numbers and the exact commands go
# to bench/results/<date-time>/ (git-ignored). See docs/BENCHMARKS.md for the settings.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

need=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if ((${#need[@]})); then
    if [[ ${BENCH_NO_INSTALL:-0} == 1 ]]; then
        echo "bench: missing ${need[*]} and BENCH_NO_INSTALL=1" >&2
        exit 1
    fi
    echo "bench: installing ${need[*]} from Debian's packages"
    sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    # Keep the packages' init scripts from starting system-wide daemons on ports 80/443.
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
    [[ -z $policy ]] || $sudo rm -f "$policy"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# One run at a time: two runs on one machine share its two CPUs and its ports.
mkdir -p "$root/bench/results"
exec 9>"$root/bench/results/.lock"
if ! flock -w "${BENCH_LOCK_WAIT:-0}" 9; then
    echo "bench: another benchmark run holds bench/results/.lock; try again when it ends" >&2
    exit 1
fi

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    echo "bench: cargo build --release -p certgate-loadgen -p certgate"
    if ! cargo build --release -p certgate-loadgen -p certgate; then
        echo "bench: certgate did not build; building the load generator alone (certgate runs are skipped)" >&2
        cargo build --release -p certgate-loadgen
    fi
fi

pki=${BENCH_PKI_DIR:-$root/bench/results/pki}
# The OCSP responder of the revocation scenario (bench.py's OCSP_PORT), named in the client
# certificates' AIA.
export BENCH_OCSP_URL=${BENCH_OCSP_URL:-http://127.0.0.1:$(( ${BENCH_PORT_BASE:-28000} + 5 ))/}
"$here/lib/pki.sh" "$pki"
export BENCH_PKI_DIR=$pki

run_dir=${BENCH_RUN_DIR:-$root/bench/results/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$run_dir"
export BENCH_RUN_DIR=$run_dir

# The orchestrator stops everything it started; this trap is the backstop if it dies.
cleanup() {
    local pid
    if [[ -f $run_dir/pids ]]; then
        while read -r pid; do
            [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
        done <"$run_dir/pids"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# The whole command stays under 20 minutes (BENCH_TOTAL_SECONDS): the time the install, the
# build and the PKI took comes off the orchestrator's budget, so after a build from nothing
# the last runs may be reported as not measured instead of overrunning.
left=$(( ${BENCH_TOTAL_SECONDS:-1190} - SECONDS ))
bench_timeout=${BENCH_TIMEOUT:-$(( left > 200 ? left - 20 : 180 ))}
# (The orchestrator keeps 90 s of its budget for the memory scenario itself.)
export BENCH_MAX_SECONDS=${BENCH_MAX_SECONDS:-$(( bench_timeout > 180 ? bench_timeout - 30 : 150 ))}
echo "bench: $SECONDS s of set-up; orchestrator budget ${BENCH_MAX_SECONDS} s, hard stop ${bench_timeout} s"
timeout --signal=TERM --kill-after=30 "$bench_timeout" python3 "$here/lib/bench.py"
