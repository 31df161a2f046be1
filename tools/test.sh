#!/usr/bin/env bash
# test.sh - every test of the project, as `npm test` runs it (and CI, through .ci/run).
#
#   1. system packages (tools/prereqs.sh) and the Pulumi engine (tools/toolchain.sh), both cached;
#   2. type check and shellcheck;
#   3. the lab (lab:up), shared by every end-to-end test;
#   4. two node:test runs at once: the lab's (lab and end-to-end tests, one file at a time, as they
#      share the lab) and the rest (unit tests, integration tests on throwaway engines, the smoke
#      test), whose report follows the lab's.
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

step "lab"
lab_was_up=0
if npx tsx lab/cli.ts status >/dev/null 2>&1; then lab_was_up=1; fi
npx tsx lab/cli.ts up
if [ "$lab_was_up" = 0 ] && [ "${KEEP_LAB:-0}" != 1 ]; then
  # A lab this run started is removed at the end; KEEP_LAB=1 keeps it for a look afterwards.
  trap 'step "lab down"; npx tsx lab/cli.ts down || true' EXIT
fi

step "tests"
shopt -s nullglob globstar
reports=$(mktemp -d)
# The lab's: node:test runs the files in path order (test/e2e first); each e2e suite brings the lab
# to the committed config itself (the migration drill tears down whatever stack it finds first).
lab_files=(test/e2e/*.test.ts test/lab/*.test.ts)
# The rest, beside it: nothing of these touches the lab or the dev stack.
local_files=(test/unit/**/*.test.ts test/integration/*.test.ts test/smoke/*.test.ts)
local_started=$(date +%s)
( rc=0
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "${local_files[@]}" >"$reports/local" 2>&1 || rc=$?
  echo "$rc" >"$reports/local.rc"; echo $(( $(date +%s) - local_started )) >"$reports/local.seconds" ) &
local_pid=$!
lab_rc=0
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${lab_files[@]}" 2>&1 | tee "$reports/lab" || lab_rc=$?
wait "$local_pid" || true
step "unit, integration and smoke tests (run beside the lab's, in $(cat "$reports/local.seconds" 2>/dev/null || echo "?")s)"
cat "$reports/local"
local_rc=$(cat "$reports/local.rc" 2>/dev/null || echo 1)
total() { cat "$reports/lab" "$reports/local" | sed -n "s/^ℹ $1 //p" | awk '{ n += $1 } END { print n + 0 }'; }
if [ "$lab_rc" != 0 ] && grep -q '^✖ failing tests:' "$reports/lab"; then
  # Printed last, so that a log cut to its end still shows why the lab's tests failed.
  step "the lab's failing tests again (their full report is above the unit tests')"
  sed -n '/^✖ failing tests:/,$p' "$reports/lab" | grep -v '^ℹ '
fi
step "both: $(total tests) tests, $(total pass) pass, $(total fail) fail, $(total skipped) skipped"
rm -rf "$reports"
if [ "$lab_rc" != 0 ] || [ "$local_rc" != 0 ]; then
  step "failed: lab and end-to-end tests exit $lab_rc, unit, integration and smoke tests exit $local_rc"
  exit 1
fi
step "done"
