#!/usr/bin/env bash
# build-layer.sh BASE_TAR OUT_TAR IMAGE TIMEOUT_S ASSETS_DIR [PACKAGE...]
#
# Builds one image layer on top of the lab's base root file system: the base is the lower
# directory of an overlay mount, the packages are installed with apt-get in a chroot of the
# merged directory, then lab/image-setup.sh IMAGE runs there. The upper directory, the
# changes alone, becomes OUT_TAR (deleted files become Docker whiteouts). If the setup leaves
# a directory /tmp/lab-export, that directory is the layer instead (a stand-alone image).
set -euo pipefail

base=${1:?usage: build-layer.sh BASE_TAR OUT_TAR IMAGE TIMEOUT_S ASSETS_DIR [PACKAGE...]}
out=${2:?out}
image=${3:?image}
timeout_s=${4:?timeout}
assets=${5:?assets}
shift 5
packages=("$@")

log() { printf '[build %s] %s\n' "$image" "$*"; }

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.layer.XXXXXX")
lower="$work/lower" upper="$work/upper" ovwork="$work/work" root="$work/root"
mkdir -p "$lower" "$upper" "$ovwork" "$root"

unmount_all() {
	local m
	while IFS= read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done < <(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r)
}
cleanup() {
	unmount_all
	rm -rf "$work"
}
trap cleanup EXIT

log "unpacking the base"
tar --numeric-owner --xattrs --xattrs-include='security.capability' -C "$lower" -xf "$base"

mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$ovwork" "$root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
# package lists and downloaded packages are shared by all builds (outside the layer)
apt_cache=${LAB_APT_CACHE:-}
if [[ -n "$apt_cache" ]]; then
	mkdir -p "$apt_cache/lists/partial" "$apt_cache/archives/partial"
	mount --bind "$apt_cache/lists" "$root/var/lib/apt/lists"
	mount --bind "$apt_cache/archives" "$root/var/cache/apt/archives"
fi

# no service starts inside the build chroot
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

in_root() { timeout --kill-after=10 1800 chroot "$root" /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 HOME=/root "$@"; }

if ((${#packages[@]})); then
	stamp="${apt_cache:-$work}/lists.stamp"
	if [[ -n "$(find "$stamp" -mmin -60 2>/dev/null)" ]]; then
		log "package lists are fresh"
	else
		log "apt-get update"
		if ! in_root apt-get -q -o "Acquire::http::Timeout=${timeout_s}" -o Acquire::Retries=2 update; then
			echo "error: apt-get update failed (is the mirror answering?)" >&2
			exit 3
		fi
		touch "$stamp"
	fi
	log "apt-get install ${packages[*]}"
	in_root apt-get -q -y -o "Acquire::http::Timeout=${timeout_s}" -o Acquire::Retries=2 \
		-o Dpkg::Options::=--force-confold install --no-install-recommends "${packages[@]}"
fi

mkdir -p "$root/tmp/lab-assets"
cp -a "$assets"/. "$root/tmp/lab-assets/"
log "setup"
in_root /bin/bash /tmp/lab-assets/image-setup.sh "$image"

rm -f "$root/usr/sbin/policy-rc.d"
if [[ -n "$apt_cache" ]]; then
	umount "$root/var/cache/apt/archives" "$root/var/lib/apt/lists"
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
	"$root"/var/cache/ldconfig/aux-cache
mkdir -p "$root/var/lib/apt/lists/partial"

if [[ -d "$root/tmp/lab-export" ]]; then
	layer="$work/export"
	mv "$root/tmp/lab-export" "$layer"
	rm -rf "$root/tmp/lab-assets"
	unmount_all
else
	rm -rf "$root/tmp/lab-assets"
	unmount_all
	layer="$upper"
	# overlayfs marks a deleted file with a 0:0 character device; Docker layers use .wh. files
	while IFS= read -r -d '' wh; do
		if [[ "$(stat -c '%t:%T' "$wh")" == "0:0" ]]; then
			rm -f "$wh"
			: >"$(dirname "$wh")/.wh.$(basename "$wh")"
		fi
	done < <(find "$upper" -type c -print0)
	rm -rf "$upper/tmp"/* "$upper/var/tmp"/*
fi

log "writing $(basename "$out")"
tar --numeric-owner --xattrs --xattrs-include='security.capability' --sort=name \
	-C "$layer" -cf "$out.tmp" .
mv "$out.tmp" "$out"
log "done: $(du -h "$out" | cut -f1)"
