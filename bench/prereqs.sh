#!/usr/bin/env bash
# prereqs.sh: the system packages the lab benchmarks need besides tools/prereqs.sh's (run by
# bench/peers.ts before the lab part; as root; does nothing when they are installed):
#   ansible, python3-docker, python3-paramiko, python3-jsondiff, python3-yaml  the Ansible peer
#       (Debian bookworm: ansible 7.7 with ansible-core 2.14 and community.docker 3.4.7; the docker
#       modules run with /usr/bin/python3, which has these libraries)
#   dpkg-dev  dpkg-scanpackages, to index the lab's package source (bench/package-source.sh)
#   util-linux  flock, the lab lock
set -euo pipefail
packages=(ansible python3-docker python3-paramiko python3-jsondiff python3-yaml dpkg-dev util-linux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "bench/prereqs.sh: missing ${missing[*]}; run as root to install them" >&2; exit 4; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
