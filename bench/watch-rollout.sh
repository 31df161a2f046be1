#!/usr/bin/env bash
# watch-rollout.sh SERVICE IMAGE REPLICAS [TIMEOUT_S]
#
# Run on a manager (bench/lab.ts sends it over SSH on standard input: `bash -s -- ARGS`): prints
# `ready` once it watches, then `done EPOCH` (date +%s.%N) at the first moment every task of
# SERVICE that is meant to run (desired state running) is Running on IMAGE and there are exactly
# REPLICAS of them: the end condition of the rolling-update benchmark, the same for both sides.
# Exits 1 with `timeout` after TIMEOUT_S seconds (default 300). Polls `docker service ps` about
# four times a second (the figures' resolution).
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: watch-rollout.sh SERVICE IMAGE REPLICAS [TIMEOUT_S]" >&2; exit 2; }
service=$1 image=$2 replicas=$3 timeout=${4:-300}
deadline=$((SECONDS + timeout))

echo ready
while [ "$SECONDS" -lt "$deadline" ]; do
  tasks=$(docker service ps "$service" --filter desired-state=running --format '{{.Image}}|{{.CurrentState}}' 2>/dev/null || true)
  total=0 good=0
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    total=$((total + 1))
    case "$line" in "$image|Running"*) good=$((good + 1)) ;; esac
  done <<<"$tasks"
  if [ "$total" -eq "$replicas" ] && [ "$good" -eq "$replicas" ]; then
    echo "done $(date +%s.%N)"
    exit 0
  fi
  sleep 0.25
done
echo timeout
exit 1
