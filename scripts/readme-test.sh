#!/usr/bin/env bash
# README's commands on a fresh clone, as a newcomer runs them.
#
# 1. Clones the committed HEAD of this repository into a temporary directory.
# 2. Reads README.md there: the first ```sh block under "## The two commands" is the run
#    command, the second the test command (which must be what .ci/run runs).
# 3. Runs the run command in the clone's root in the background, waits for the curl commands
#    it prints, runs them exactly as printed (from the clone's root, and the first one from /
#    as well) and expects 200, 401, 403; runs the printed admin example.
# 4. Runs every other ```sh block of README.md, in order, as one bash script (set -euo
#    pipefail) in the clone's root against that quickstart node. A block right after a line
#    `<!-- readme-test: skip … -->` is not run (e.g. `serve`, which runs until stopped).
# 5. Stops the quickstart with SIGINT, as Ctrl-C does, and expects its shutdown log line and
#    exit status 0.
#
# Every wait is bounded: READY_TIMEOUT (build + start, seconds), BLOCKS_TIMEOUT (README's
# blocks), STOP_TIMEOUT. CARGO_TARGET_DIR is inherited so that builds are reused between runs;
# without it the clone builds from nothing in its own target/ (several minutes).
# The quickstart uses its fixed ports 8443 and 9090 (README's commands assume them): they must
# be free; the script waits up to PORT_WAIT seconds for them, then fails saying so.
set -euo pipefail
set -m # job control: the quickstart runs in its own process group, which SIGINT reaches

READY_TIMEOUT=${READY_TIMEOUT:-2400}
BLOCKS_TIMEOUT=${BLOCKS_TIMEOUT:-1200}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
PORT_WAIT=${PORT_WAIT:-120}

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/certgate-readme.XXXXXX")
clone=$tmp/certgate
qs_pid=""

say() { echo "readme-test: $*" >&2; }
fail() {
  say "FAIL: $*"
  if [ -s "$tmp/quickstart.err" ]; then
    say "last lines of the quickstart's stderr:"
    tail -n 15 "$tmp/quickstart.err" >&2
  fi
  exit 1
}
cleanup() {
  if [ -n "$qs_pid" ] && kill -0 "$qs_pid" 2>/dev/null; then
    kill -TERM -- "-$qs_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$qs_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$qs_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

t0=$(date +%s)
git clone -q "$repo" "$clone"
cd "$clone"
say "cloned $(git log -1 --format='%h %s') into $clone"

# --- README's shell blocks -------------------------------------------------------------------
mkdir "$tmp/blocks"
awk -v dir="$tmp/blocks" '
  /^## / { section = substr($0, 4) }
  inblock && /^```[[:space:]]*$/ { inblock = 0; close(file); printf "%03d\t%d\t%s\n", n, skip, section; next }
  inblock { print > file; next }
  /^```sh[[:space:]]*$/ { inblock = 1; n++; file = sprintf("%s/%03d.sh", dir, n); skip = pending; pending = 0; printf "" > file; next }
  /^<!-- readme-test: skip/ { pending = 1; next }
  /^[[:space:]]*$/ { next }
  { pending = 0 }
' README.md > "$tmp/blocks/index"
[ -s "$tmp/blocks/index" ] || fail "README.md has no \`\`\`sh blocks"

two=$(awk -F'\t' '$3 == "The two commands" { print $1 }' "$tmp/blocks/index")
run_block=$(echo "$two" | sed -n 1p)
test_block=$(echo "$two" | sed -n 2p)
[ -n "$run_block" ] && [ -n "$test_block" ] || fail "README.md: no two sh blocks under \"## The two commands\""
code_lines() { grep -v '^[[:space:]]*\(#\|$\)' "$1"; }
run_cmd=$(code_lines "$tmp/blocks/$run_block.sh")
test_cmd=$(code_lines "$tmp/blocks/$test_block.sh")
[ "$(echo "$run_cmd" | wc -l)" -eq 1 ] || fail "README's run command is not one line: $run_cmd"
grep -qxF "$test_cmd" .ci/run || fail "README's test command ($test_cmd) is not what .ci/run runs"
say "README's run command: $run_cmd"
say "README's test command: $test_cmd (run by .ci/run)"

# --- the quickstart --------------------------------------------------------------------------
for port in 8443 9090; do
  waited=0
  while port_busy "$port"; do
    [ "$waited" -lt "$PORT_WAIT" ] || fail "port $port stays in use (the quickstart needs 8443 and 9090)"
    sleep 1
    waited=$((waited + 1))
  done
done

unset CERTGATE_ADMIN_URL CERTGATE_ADMIN_TOKEN
bash -c "$run_cmd" > "$tmp/quickstart.out" 2> "$tmp/quickstart.err" &
qs_pid=$!
deadline=$(($(date +%s) + READY_TIMEOUT))
until grep -q 'Press Ctrl-C to stop' "$tmp/quickstart.out"; do
  kill -0 "$qs_pid" 2>/dev/null || fail "the quickstart exited before it was ready: $(cat "$tmp/quickstart.out")"
  [ "$(date +%s)" -lt "$deadline" ] || fail "the quickstart was not ready within ${READY_TIMEOUT}s"
  sleep 1
done
say "quickstart ready $(($(date +%s) - t0))s after the clone (build included)"

mapfile -t curls < <(grep '^curl ' "$tmp/quickstart.out")
[ "${#curls[@]}" -eq 3 ] || fail "expected 3 printed curl commands, got ${#curls[@]}: $(cat "$tmp/quickstart.out")"
status_of() { # DIR CMD: the command as printed, plus curl's own output options
  (cd "$1" && timeout 60 bash -c "$2 -s -o /dev/null -w '%{http_code}' --max-time 30") || true
}
want=(200 401 403)
for i in 0 1 2; do
  got=$(status_of "$clone" "${curls[$i]}")
  [ "$got" = "${want[$i]}" ] || fail "expected ${want[$i]}, got '$got' from: ${curls[$i]}"
  say "${want[$i]}: ${curls[$i]}"
done
got=$(status_of / "${curls[0]}")
[ "$got" = 200 ] || fail "the printed 200 command gave '$got' when run from /"

admin_example=$(grep ' gateway show$' "$tmp/quickstart.out" || true)
[ -n "$admin_example" ] || fail "the quickstart printed no admin example"
(cd / && timeout 60 bash -c "$admin_example" > "$tmp/admin-example.out") ||
  fail "the printed admin example failed: $admin_example"
grep -q '^mode: *mtls' "$tmp/admin-example.out" || fail "gateway show did not show mode mtls: $(cat "$tmp/admin-example.out")"
say "the printed admin example works from /"

# --- README's other blocks against the quickstart --------------------------------------------
{
  echo 'set -euo pipefail'
  while IFS=$'\t' read -r n skip section; do
    [ "$section" = "The two commands" ] && continue
    if [ "$skip" = 1 ]; then
      say "not run (marked skip): block $n under \"$section\""
      continue
    fi
    printf 'echo "readme-test: README block %s (%s)" >&2\n' "$n" "$section"
    cat "$tmp/blocks/$n.sh"
  done < "$tmp/blocks/index"
} > "$tmp/walkthrough.sh"
timeout "$BLOCKS_TIMEOUT" bash "$tmp/walkthrough.sh" > "$tmp/walkthrough.out" 2> "$tmp/walkthrough.err" || {
  rc=$?
  cat "$tmp/walkthrough.out" >&2
  tail -n 30 "$tmp/walkthrough.err" >&2
  fail "README's shell blocks failed (exit $rc)"
}
grep '^readme-test: README block' "$tmp/walkthrough.err" >&2 || true
say "README's shell blocks ran without error"

# --- Ctrl-C ----------------------------------------------------------------------------------
kill -INT -- "-$qs_pid"
deadline=$(($(date +%s) + STOP_TIMEOUT))
while kill -0 "$qs_pid" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the quickstart did not stop within ${STOP_TIMEOUT}s of SIGINT"
  sleep 0.2
done
rc=0
wait "$qs_pid" || rc=$?
qs_pid=""
[ "$rc" -eq 0 ] || fail "the quickstart exited $rc after SIGINT"
grep -q 'shutting down' "$tmp/quickstart.err" || fail "no shutdown line in the quickstart's log"
say "SIGINT: the quickstart logged its shutdown and exited 0"
say "PASS in $(($(date +%s) - t0))s"
