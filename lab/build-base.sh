#!/usr/bin/env bash
# build-base.sh OUT_TAR MIRROR SUITE TIMEOUT_S [SECURITY_MIRROR]
#
# Builds the lab's shared base root file system with debootstrap (variant minbase) from a
# Debian mirror and writes it as one uncompressed tar (the base layer of every lab image).
# A mirror that does not answer within TIMEOUT_S seconds is an error, never a hang.
set -euo pipefail

out=${1:?usage: build-base.sh OUT_TAR MIRROR SUITE TIMEOUT_S}
mirror=${2:?mirror}
suite=${3:?suite}
timeout_s=${4:-20}
security=${5:-}

log() { printf '[build-base] %s\n' "$*"; }

log "checking the mirror ${mirror} (time-out ${timeout_s}s)"
if ! curl -fsS -o /dev/null --connect-timeout "$timeout_s" --max-time "$((timeout_s * 2))" \
	"${mirror%/}/dists/${suite}/Release"; then
	echo "error: the Debian mirror ${mirror} did not answer for ${suite} within ${timeout_s}s" >&2
	exit 3
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.base.XXXXXX")
cleanup() {
	# debootstrap may leave proc/sys/dev mounts behind when it is interrupted
	local m
	while IFS= read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r)
	rm -rf "$work"
}
trap cleanup EXIT

# debootstrap downloads with wget: bound every request
cat >"$work/wgetrc" <<WGETRC
timeout = ${timeout_s}
tries = 2
WGETRC
export WGETRC="$work/wgetrc"

log "debootstrap --variant=minbase ${suite}"
timeout --kill-after=10 1800 debootstrap --variant=minbase --components=main \
	"$suite" "$work/root" "$mirror"

root="$work/root"
# Leave the base as a container image base: no caches, no lists, no per-host files.
{
	printf 'deb %s %s main\n' "$mirror" "$suite" "$mirror" "${suite}-updates"
	if [[ -n "$security" ]]; then printf 'deb %s %s main\n' "$security" "${suite}-security"; fi
} >"$root/etc/apt/sources.list"
cat >"$root/etc/apt/apt.conf.d/90dccn-lab" <<APT
Acquire::Languages "none";
Acquire::http::Timeout "${timeout_s}";
Acquire::Retries "2";
APT
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
# like Debian's -slim images: no documentation, manual pages or translations
cat >"$root/etc/dpkg/dpkg.cfg.d/90dccn-lab-slim" <<CFG
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
find "$root/usr/share/doc" ! -type d ! -name copyright -delete
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
	"$root"/var/lib/apt/lists/* "$root"/var/log/bootstrap.log "$root"/debootstrap
mkdir -p "$root/var/lib/apt/lists/partial"

log "writing $(basename "$out")"
tar --numeric-owner --xattrs --xattrs-include='security.capability' --sort=name \
	-C "$root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
log "done: $(du -h "$out" | cut -f1)"
