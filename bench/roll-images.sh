#!/usr/bin/env bash
# roll-images.sh up|down BASE_IMAGE PORT REPO TAG...
#
# Run on every lab node (bench/lab.ts sends it over SSH on standard input: `bash -s -- ARGS`): the
# images of the rolling-update benchmark, served the way a cluster gets them, from a registry.
#   up    a throwaway registry container (dccn-bench-registry, the lab's dccn-lab/registry:2.8) on
#         127.0.0.1:PORT of this node, and BASE_IMAGE pushed to it as localhost:PORT/REPO:TAG for
#         each TAG. The engine trusts registries on localhost without TLS. Restart policy
#         `always`: the from-scratch benchmark removes and reinstalls the engine (bench/node-engine.sh
#         keeps this container and the image store), and the registry comes back with the engine.
#   down  the container and the tags removed.
# Why: a task on a tag the engine cannot pull (the lab's dccn-lab/* images: nodes have no outbound
# network) waits out a failed pull from Docker Hub (~17 s of DNS timeouts in the lab) before it
# starts; a reachable registry makes the pull what it is on the cluster, a manifest check.
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: roll-images.sh up|down BASE_IMAGE PORT REPO TAG..." >&2; exit 2; }
mode=$1 base=$2 port=$3 repo=$4
shift 4
name=dccn-bench-registry

case "$mode" in
  up)
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --label dccn-bench=roll --restart always -p "127.0.0.1:$port:5000" dccn-lab/registry:2.8 >/dev/null
    for _ in $(seq 1 100); do
      if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || { echo "registry on 127.0.0.1:$port did not answer" >&2; exit 1; }
    for tag in "$@"; do
      docker tag "$base" "localhost:$port/$repo:$tag"
      docker push -q "localhost:$port/$repo:$tag" >/dev/null
    done
    ;;
  down)
    docker rm -f "$name" >/dev/null 2>&1 || true
    for tag in "$@"; do docker image rm "localhost:$port/$repo:$tag" >/dev/null 2>&1 || true; done
    ;;
  *) echo "usage: roll-images.sh up|down BASE_IMAGE PORT REPO TAG..." >&2; exit 2 ;;
esac
