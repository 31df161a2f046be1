#!/usr/bin/env bash
# test.sh - every test of the project, as `npm test` runs it (and CI, through .ci/run).
#
#   1. system packages (tools/prereqs.sh) and the Pulumi engine (tools/toolchain.sh), both cached;
#   2. type check and shellcheck;
#   3. two labs: the default one (Debian bookworm's engine 20.10, the engine the prod stack pins) and
#      `lab26` (Debian trixie's engine 26, `lab:up --engine 26`), side by side on their own networks;
#   4. three node:test runs at once: the default lab's end-to-end and lab tests, the engine-26 lab's
#      (each stream one file at a time, as its files share their lab), and the rest (unit tests,
#      integration tests on throwaway engines of both versions, the smoke test). The cluster
#      scenarios run on both labs; every other lab suite on one of them (E26_FILES).
#
# In CI (CI=true) a missing prerequisite fails the run; tests never skip there.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

step "prerequisites"
bash tools/prereqs.sh
step "toolchain"
bash tools/toolchain.sh --allow-missing-plugins
# shellcheck source=/dev/null
source tools/env.sh
bash tools/stack-init.sh dev

step "type check and build"
npx tsc --noEmit -p .
# The program and its provider plugin as every pulumi run uses them (Pulumi.yaml typescript: false).
npm run --silent build
step "shellcheck"
shellcheck -x scripts/*.sh tools/*.sh lab/*.sh bench/*.sh stacks/lab/*/*.sh .ci/run

step "labs"
# Two labs, each with its own name, network and state (lab/README.md, "Lab instances"): the default
# one (TEST_LAB names another, e.g. to keep a lab in use on this machine out of the run) and the
# engine-26 one (TEST_LAB26, default lab26).
TEST_LAB=${TEST_LAB:-}
TEST_LAB26=${TEST_LAB26:-lab26}
on_lab() { local lab=$1; shift; if [ -n "$lab" ]; then LAB_NAME="$lab" "$@"; else env -u LAB_NAME "$@"; fi; }
started_labs=()
for lab in "$TEST_LAB" "$TEST_LAB26"; do
  if [ "$lab" = "$TEST_LAB26" ]; then up_args=(--engine 26); else up_args=(--engine 20); fi
  if ! on_lab "$lab" npx tsx lab/cli.ts status >/dev/null 2>&1; then started_labs+=("$lab"); fi
  on_lab "$lab" npx tsx lab/cli.ts up "${up_args[@]}"
done
if [ "${#started_labs[@]}" -gt 0 ] && [ "${KEEP_LAB:-0}" != 1 ]; then
  # Labs this run started are removed at the end; KEEP_LAB=1 keeps them for a look afterwards.
  labs_down() {
    step "labs down"
    for lab in "${started_labs[@]}"; do on_lab "$lab" npx tsx lab/cli.ts down || true; done
  }
  trap labs_down EXIT
fi

step "tests"
shopt -s nullglob globstar
reports=$(mktemp -d)
# The engine-26 lab runs these, the default lab the other lab files; both run the cluster scenarios.
# Within a stream node:test runs the files in path order; each e2e suite brings its lab to the
# committed config itself (the migration drill tears down whatever stack it finds first).
E26_FILES=(test/e2e/cluster.test.ts test/e2e/connection.test.ts test/e2e/ops.test.ts test/e2e/registry.test.ts
  test/e2e/security.test.ts test/e2e/stacks.test.ts)
e26_only=" ${E26_FILES[*]} "
default_files=()
for f in test/e2e/*.test.ts test/lab/*.test.ts; do
  if [ "$f" = test/e2e/cluster.test.ts ] || [[ "$e26_only" != *" $f "* ]]; then default_files+=("$f"); fi
done
e26_files=()
for f in "${E26_FILES[@]}"; do [ -e "$f" ] && e26_files+=("$f"); done
# The rest, beside them: nothing of these touches a lab or the dev stack.
local_files=(test/unit/**/*.test.ts test/integration/*.test.ts test/smoke/*.test.ts)

# One stream: NAME, then the command; its report, exit code and duration land in $reports.
stream() {
  local name=$1; shift
  local t0 rc=0
  t0=$(date +%s)
  "$@" >"$reports/$name" 2>&1 || rc=$?
  echo "$rc" >"$reports/$name.rc"
  echo $(( $(date +%s) - t0 )) >"$reports/$name.seconds"
}
node_test=(node --import tsx --test --test-concurrency=1 --test-reporter=spec)
# The reports exist before the streams start, so that tail follows the default lab's from its start.
touch "$reports/lab" "$reports/lab26" "$reports/local"
stream local "${node_test[@]}" "${local_files[@]}" &
local_pid=$!
stream lab26 on_lab "$TEST_LAB26" "${node_test[@]}" "${e26_files[@]}" &
lab26_pid=$!
# The default lab's stream in the foreground, its report printed as it goes.
stream lab on_lab "$TEST_LAB" "${node_test[@]}" "${default_files[@]}" &
lab_pid=$!
tail -n +1 -f "$reports/lab" --pid="$lab_pid" 2>/dev/null || true
wait "$lab_pid" "$lab26_pid" "$local_pid" || true
seconds() { cat "$reports/$1.seconds" 2>/dev/null || echo "?"; }
step "the default lab's (engine 20.10) tests above, in $(seconds lab)s; the engine-26 lab's, in $(seconds lab26)s"
cat "$reports/lab26"
step "unit, integration and smoke tests (run beside the labs', in $(seconds local)s)"
cat "$reports/local"
rc_of() { cat "$reports/$1.rc" 2>/dev/null || echo 1; }
total() { cat "$reports/lab" "$reports/lab26" "$reports/local" | sed -n "s/^ℹ $1 //p" | awk '{ n += $1 } END { print n + 0 }'; }
for name in lab lab26 local; do
  if [ "$(rc_of "$name")" != 0 ] && grep -q '^✖ failing tests:' "$reports/$name"; then
    # Printed last, so that a log cut to its end still shows why.
    step "the failing tests of the $name stream again (its full report is above)"
    sed -n '/^✖ failing tests:/,$p' "$reports/$name" | grep -v '^ℹ '
  fi
done
step "all: $(total tests) tests, $(total pass) pass, $(total fail) fail, $(total skipped) skipped"
codes="default lab exit $(rc_of lab), engine-26 lab exit $(rc_of lab26), unit, integration and smoke exit $(rc_of local)"
failed=0
for name in lab lab26 local; do [ "$(rc_of "$name")" = 0 ] || failed=1; done
rm -rf "$reports"
if [ "$failed" != 0 ]; then
  step "failed: $codes"
  exit 1
fi
step "done"
