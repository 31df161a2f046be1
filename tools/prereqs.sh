#!/usr/bin/env bash
# prereqs.sh - install the Debian packages the lab and the tests need, when they are missing, and
# fetch the second Docker engine the parity tests run (tools/engines.sh: trixie's 26.1.5, in a cache
# outside the work tree). Idempotent: with everything present it installs nothing and touches no
# package list.
set -euo pipefail

# command -> Debian package
declare -A NEED=(
  [dockerd]=docker.io
  [debootstrap]=debootstrap
  [shellcheck]=shellcheck
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [sshd]=openssh-server
  [iptables]=iptables
  [ip]=iproute2
  [busybox]=busybox-static
  [chromium]=chromium
  [curl]=curl
  [openssl]=openssl
  [age]=age
  [age-keygen]=age
  [jq]=jq
  [python3]=python3
  [patchelf]=patchelf
)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "prereqs: all packages present"
  "$HERE/engines.sh"
  exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "prereqs: missing ${pkgs[*]}; install them as root: apt-get install -y ${pkgs[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "prereqs: missing ${pkgs[*]} and no apt-get here; install them with this system's package manager" >&2
  exit 1
fi
echo "prereqs: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
timeout 600 apt-get update -qq
# Another session's apt-get may hold the lock for a while: wait for it rather than fail.
timeout 1200 apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo "prereqs: installed ${pkgs[*]}"
"$HERE/engines.sh"
