#!/usr/bin/env bash
# node-engine.sh bare|check-bare|engine SOURCE_URL [KEEP_CONTAINER]
#
# Run on a lab node (bench/lab.ts sends it over SSH on standard input: `bash -s -- ARGS`): the
# starting point of the from-scratch benchmark, a node without a Docker engine whose apt installs
# from the lab's package source (bench/package-source.sh) and nothing else, as a machine fresh
# from its kickstart with the site's Debian mirror.
#
#   bare        apt's sources become one line, `deb [trusted=yes] SOURCE_URL ./` (the image's own
#               sources, which point at the unreachable Debian mirror, moved once to
#               /etc/apt/sources.lab-orig); then, when an engine is installed: the node leaves any
#               swarm, every container except KEEP_CONTAINER is removed, the engine is stopped and
#               disabled, and docker.io, containerd, runc and tini are removed with apt-get (not purged:
#               the image store under /var/lib/docker stays, so the stacks' images are on the node
#               as on a machine that pulled them before); /etc/docker/daemon.json and the swarm state
#               (/var/lib/docker/swarm) are deleted. Prints `bare`.
#   check-bare  exits 1 unless there is no dockerd on the node and apt sees only the package source.
#   engine      apt pointed at the package source as for `bare`, then docker.io installed and the
#               engine enabled and started (the bench's own set-up of a node it left bare; untimed).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive

[ $# -ge 2 ] || { echo "usage: node-engine.sh bare|check-bare|engine SOURCE_URL [KEEP_CONTAINER]" >&2; exit 2; }
mode=$1 url=$2 keep=${3:-}
line="deb [trusted=yes] $url ./"

# package_source: apt's only source is the lab's package source.
package_source() {
  if [ ! -d /etc/apt/sources.lab-orig ]; then
    mkdir -p /etc/apt/sources.lab-orig
    if [ -f /etc/apt/sources.list ]; then mv /etc/apt/sources.list /etc/apt/sources.lab-orig/; fi
    find /etc/apt/sources.list.d -maxdepth 1 -type f -exec mv -t /etc/apt/sources.lab-orig/ {} +
  fi
  printf '%s\n' "$line" >/etc/apt/sources.list
}

case "$mode" in
  engine)
    package_source
    if ! command -v dockerd >/dev/null 2>&1; then
      apt-get update -q >/dev/null
      apt-get install -y -q --no-install-recommends docker.io >/dev/null
    fi
    systemctl enable --now docker >/dev/null
    ;;
  bare)
    package_source
    if command -v dockerd >/dev/null 2>&1; then
      if systemctl is-active --quiet docker >/dev/null; then
        docker swarm leave --force >/dev/null 2>&1 || true
        ids=$(docker ps -aq --filter "name=^/${keep:-^}$" 2>/dev/null || true)
        for c in $(docker ps -aq); do
          case " $ids " in *" $c "*) ;; *) docker rm -f "$c" >/dev/null 2>&1 || true ;; esac
        done
      fi
      systemctl disable --now docker >/dev/null
      apt-get remove -y -q docker.io containerd runc tini >/dev/null
    fi
    rm -f /etc/docker/daemon.json
    rm -rf /var/lib/docker/swarm
    echo bare
    ;;
  check-bare)
    if command -v dockerd >/dev/null 2>&1; then echo "dockerd is installed" >&2; exit 1; fi
    if [ "$(cat /etc/apt/sources.list)" != "$line" ] || [ -n "$(find /etc/apt/sources.list.d -maxdepth 1 -type f)" ]; then
      echo "apt has other sources than $line" >&2
      exit 1
    fi
    ;;
  *) echo "usage: node-engine.sh bare|check-bare|engine SOURCE_URL [KEEP_CONTAINER]" >&2; exit 2 ;;
esac
