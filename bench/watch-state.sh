#!/usr/bin/env bash
# watch-state.sh TIMEOUT_S EXPECT...
#
# Run on a manager (bench/lab.ts sends it over SSH on standard input: `bash -s -- ARGS`): the end
# condition of every lab benchmark, the same for every side. Polls the swarm about four times a
# second and prints `done EPOCH` (date +%s.%N) at the first moment all of EXPECT hold; exits 1 with
# `timeout` and what still differs after TIMEOUT_S seconds.
#
#   node:NAME:ROLE:AVAILABILITY:K=V,K=V...   NAME is in the swarm, ready, with that role and
#                                            availability and at least those labels
#   svc:NAME:IMAGE:REPLICAS                  service NAME has exactly REPLICAS tasks meant to run
#                                            (desired state running), every one Running on IMAGE
#                                            (the reference as the service names it, without its
#                                            digest), and none of them on a drained node
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: watch-state.sh TIMEOUT_S EXPECT..." >&2; exit 2; }
timeout=$1
shift
deadline=$((SECONDS + timeout))
why=""

# check: 0 when every expectation holds; `why` says what does not.
check() {
  local ids nodes tasks e name role avail labels kv image replicas line total good drained
  why=""
  ids=$(docker node ls -q 2>/dev/null) || { why="no swarm"; return 1; }
  # shellcheck disable=SC2086 # one argument per node ID
  nodes=$(docker node inspect --format '{{.Description.Hostname}}|{{.Status.State}}|{{.Spec.Role}}|{{.Spec.Availability}}|,{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}},{{end}}' $ids 2>/dev/null) || { why="node inspect failed"; return 1; }
  drained=$(awk -F'|' '$4 == "drain" { print $1 }' <<<"$nodes")
  tasks=""
  for e in "$@"; do
    case "$e" in svc:*) tasks=x ;; esac
  done
  if [ -n "$tasks" ]; then
    # shellcheck disable=SC2086
    # `docker node ps` with several nodes lists a task once per node argument: unique by task ID.
    tasks=$(docker node ps $ids --filter desired-state=running --format '{{.ID}}|{{.Name}}|{{.Image}}|{{.Node}}|{{.CurrentState}}' 2>/dev/null | sort -u) ||
      { why="node ps failed"; return 1; }
  fi
  for e in "$@"; do
    case "$e" in
      node:*)
        IFS=: read -r _ name role avail labels <<<"$e"
        line=$(grep "^$name|" <<<"$nodes" || true)
        if [ -z "$line" ]; then why="$name not in the swarm"; return 1; fi
        case "$line" in "$name|ready|$role|$avail|"*) ;; *) why="node $line"; return 1 ;; esac
        IFS=, read -r -a kvs <<<"$labels"
        for kv in "${kvs[@]+"${kvs[@]}"}"; do
          case "$line" in *",$kv,"*) ;; *) why="$name lacks label $kv"; return 1 ;; esac
        done
        ;;
      svc:*)
        # IMAGE may hold colons (registry port, tag): NAME is the second field, REPLICAS the last.
        name=$(cut -d: -f2 <<<"$e")
        image=${e#svc:"$name":}
        image=${image%:*}
        replicas=${e##*:}
        total=0 good=0
        while IFS='|' read -r _ tname timage tnode tstate; do
          [ "${tname%.*}" = "$name" ] || continue
          total=$((total + 1))
          if grep -qx "$tnode" <<<"$drained"; then why="$tname still on drained $tnode"; return 1; fi
          case "$timage|$tstate" in "$image|Running"*) good=$((good + 1)) ;; esac
        done <<<"$tasks"
        if [ "$total" -ne "$replicas" ] || [ "$good" -ne "$replicas" ]; then
          why="$name: $good of $total tasks running $image, want $replicas"
          return 1
        fi
        ;;
      *) echo "bad expectation $e" >&2; exit 2 ;;
    esac
  done
}

while :; do
  if check "$@"; then
    echo "done $(date +%s.%N)"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "timeout: $why"
    exit 1
  fi
  sleep 0.25
done
