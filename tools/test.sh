#!/usr/bin/env bash
# test.sh - every test of the project, as `npm test` runs it (and CI, through .ci/run).
#
#   1. system packages (tools/prereqs.sh) and the Pulumi engine (tools/toolchain.sh), both cached;
#   2. type check and shellcheck;
#   3. the lab (lab:up), shared by every end-to-end test;
#   4. one node:test run: unit tests first, then lab, smoke and end-to-end tests, one file at a time.
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
shellcheck scripts/*.sh tools/*.sh lab/*.sh bench/*.sh .ci/run

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
# node:test runs the files in path order (test/e2e first); each e2e suite brings the lab to the
# committed config itself (the migration drill tears down whatever stack it finds first).
files=(test/unit/**/*.test.ts test/integration/*.test.ts test/lab/*.test.ts test/smoke/*.test.ts test/e2e/*.test.ts)
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
step "done"
