#!/usr/bin/env bash
# Builds and runs certgate's libFuzzer targets (fuzz/) on the stable toolchain: the coverage
# instrumentation that cargo-fuzz adds is a set of stable rustc flags, and `--sanitizer none`
# is what cargo-fuzz would build without a nightly toolchain. No cargo-fuzz install needed.
#
#   scripts/fuzz.sh smoke                 every target briefly, plus every kept regression input
#   scripts/fuzz.sh run TARGET RUNS [ARG…] one target for RUNS executions (a campaign), corpus
#                                          in fuzz/corpus/TARGET (git-ignored)
#   scripts/fuzz.sh list                  the targets
#
# Crash inputs found by a campaign belong in fuzz/regressions/TARGET/ (committed); `smoke`
# replays each of them, so a regression fails CI.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here/fuzz"

triple="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${CARGO_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$here/fuzz/target}-fuzz}"
flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
  -Cdebug-assertions
  -Coverflow-checks
)
export RUSTFLAGS="${flags[*]}"
bin="$CARGO_TARGET_DIR/$triple/release"

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^certgate-fuzz$'; }

build() {
  cargo build --release --bins --target "$triple" -q
}

case "${1:-smoke}" in
  list) targets ;;
  smoke)
    build
    for t in $(targets); do
      corpus="$(mktemp -d)"
      # A few seconds each: enough to catch a target that panics at once or a regression.
      "$bin/$t" -runs="${FUZZ_SMOKE_RUNS:-300000}" -max_total_time=20 -max_len=4096 \
        "$corpus" >"$corpus.log" 2>&1 || { tail -40 "$corpus.log"; echo "fuzz smoke: $t FAILED" >&2; exit 1; }
      done_line="$(grep -E '^Done [0-9]+ runs' "$corpus.log" | tail -1)"
      echo "fuzz smoke: $t: ${done_line:-no Done line}"
      if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
        "$bin/$t" regressions/"$t"/* >"$corpus.log" 2>&1 || { tail -40 "$corpus.log"; echo "fuzz regression: $t FAILED" >&2; exit 1; }
        echo "fuzz regression: $t: $(ls "regressions/$t" | wc -l) inputs replayed"
      fi
      rm -rf "$corpus" "$corpus.log"
    done
    ;;
  run)
    t="${2:?target}"; runs="${3:?runs}"; shift 3
    build
    mkdir -p "corpus/$t" "artifacts/$t"
    "$bin/$t" -runs="$runs" -artifact_prefix="artifacts/$t/" "$@" "corpus/$t"
    ;;
  *) echo "usage: scripts/fuzz.sh smoke | run TARGET RUNS [libFuzzer args] | list" >&2; exit 2 ;;
esac
