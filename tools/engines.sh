#!/usr/bin/env bash
# engines.sh - a second Docker engine beside the host's 20.10, for the parity tests: Debian trixie's
# docker.io and docker-cli 26.1.5 with their containerd (1.7.24) and runc (1.1.15), downloaded once
# from the Debian mirror into a cache outside the work tree (a fresh clone reuses it) and extracted
# with dpkg-deb: nothing is installed, the host's packages stay as they are.
#
#   tools/engines.sh            # prints the engine's directory (ENGINE_DIR=...), fetching it if missing
#
# trixie's runc needs glibc 2.38 (__isoc23_strtol) and this host (bookworm) has 2.36: runc is
# pointed at trixie's own libc and libseccomp, extracted beside it (patchelf sets its interpreter
# and library path; runc re-executes itself, so a wrapper script would not do). The other binaries
# need glibc 2.34 at most and run as they are. Each binary is run once (--version) before the
# cache is marked ready.
set -euo pipefail

VERSION=26.1.5
CACHE=${DCCN_ENGINE_CACHE:-/var/cache/dccn-lab/engines}
DIR=$CACHE/$VERSION
MIRROR=${DCCN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES=(docker.io docker-cli containerd runc tini libc6 libseccomp2)

if [ -f "$DIR/READY" ]; then
  echo "ENGINE_DIR=$DIR"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "engines: $DIR is missing; run tools/engines.sh as root once" >&2
  exit 1
fi
for cmd in apt-get dpkg-deb patchelf; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "engines: $cmd is missing (tools/prereqs.sh installs patchelf)" >&2
    exit 1
  fi
done
if [ ! -f "$KEYRING" ]; then
  echo "engines: $KEYRING is missing (apt-get install debian-archive-keyring)" >&2
  exit 1
fi

# apt-get with trixie as its only source and its own lists and archives: the host's apt state is not touched.
APT=$CACHE/apt-trixie
mkdir -p "$APT/etc" "$APT/lists/partial" "$APT/cache"
echo "deb [signed-by=$KEYRING] $MIRROR trixie main" > "$APT/etc/sources.list"
APT_OPTS=(-q -o Dir::Etc::SourceList="$APT/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o APT::Get::List-Cleanup=0 -o Acquire::Languages=none)

WORK=$(mktemp -d "$CACHE/.$VERSION.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "engines: fetching Debian trixie's docker.io $VERSION, docker-cli, containerd, runc into $DIR" >&2
timeout 600 apt-get "${APT_OPTS[@]}" update >/dev/null
mkdir -p "$WORK/debs"
(cd "$WORK/debs" && timeout 1200 apt-get "${APT_OPTS[@]}" download "${PACKAGES[@]}" >/dev/null 2>&1) || {
  echo "engines: apt-get download ${PACKAGES[*]} from trixie failed" >&2
  exit 1
}
got=$(dpkg-deb -f "$WORK"/debs/docker.io_*.deb Version)
case "$got" in
  "$VERSION"+*) ;;
  *) echo "engines: trixie's docker.io is $got now, not $VERSION; update VERSION in tools/engines.sh (and the tests' expectations)" >&2; exit 1 ;;
esac

mkdir -p "$WORK/root" "$WORK/libc"
for p in docker.io docker-cli containerd runc tini; do
  dpkg-deb -x "$WORK"/debs/"${p}"_*.deb "$WORK/root"
done
for p in libc6 libseccomp2; do
  dpkg-deb -x "$WORK"/debs/"${p}"_*.deb "$WORK/libc"
done
LIB=$DIR/libc/usr/lib/x86_64-linux-gnu
patchelf --set-interpreter "$LIB/ld-linux-x86-64.so.2" --set-rpath "$LIB" "$WORK/root/usr/sbin/runc"

rm -rf "$DIR"
mv "$WORK" "$DIR"
trap - EXIT
chmod 755 "$DIR"
for b in usr/sbin/dockerd usr/bin/docker usr/bin/containerd "usr/bin/containerd-shim-runc-v2 -v" usr/sbin/runc usr/bin/docker-init usr/sbin/docker-proxy; do
  b="root/$b"
  read -r bin flag <<< "$b"
  if ! out=$("$DIR/$bin" "${flag:---version}" 2>&1); then
    echo "engines: $DIR/$bin does not run on this host: $out" >&2
    exit 1
  fi
done
printf 'docker.io %s\n' "$got" > "$DIR/READY"
echo "ENGINE_DIR=$DIR"
