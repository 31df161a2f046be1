#!/usr/bin/env bash
# storage-thinpool.sh - the documented direct-lvm thin pool for the devicemapper storage driver.
#
# The DCCN kickstart step /mnt/install/kickstart-7/docker/docker-thinpool.sh (document chapter
# 4.2.1, "Configure devicemapper to direct-lvm mode"), made idempotent:
#   pvcreate DEVICE; vgcreate docker DEVICE
#   lvcreate --wipesignatures y -n thinpool docker -l 95%VG
#   lvcreate --wipesignatures y -n thinpoolmeta docker -l 1%VG
#   lvconvert -y --zero n -c 512K --thinpool docker/thinpool --poolmetadata docker/thinpoolmeta
#   /etc/lvm/profile/docker-thinpool.profile (autoextend threshold 80, percent 20)
#   lvchange --metadataprofile docker-thinpool docker/thinpool; lvs -o+seg_monitor
# daemon.json is not written here: scripts/daemon-json.sh with STORAGE_DRIVER=devicemapper does it.
#
# devicemapper was deprecated in Docker Engine 20.10 and removed in 25.0: this script refuses to
# run (and changes nothing) when the engine's major version is 25 or newer.
#
# Environment:
#   DEVICE                required. the raw data disk, e.g. /dev/sdb. Never wiped: a device that
#                         carries a file system, a partition table or another volume group is refused.
#   ENGINE_VERSION        optional. engine version to check; default: from `dockerd --version`.
#   AUTOEXTEND_THRESHOLD  optional. thin_pool_autoextend_threshold, default 80.
#   AUTOEXTEND_PERCENT    optional. thin_pool_autoextend_percent, default 20.
#   DCCN_ROOT             optional. prefix for file paths (/etc), for tests. default "".
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> vg=docker thinpool=/dev/mapper/docker-thinpool device=<DEVICE>
#               engine=<version> created=<0|1> profile=<unchanged|written> metadataprofile=<unchanged|set>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>, codes:
#   no-device, engine-too-new, engine-version-unknown, device-missing, device-in-use, foreign-vg,
#   vg-without-thinpool, device-not-in-vg, no-package-manager
set -euo pipefail

PROG=storage-thinpool
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
CHANGED=0
RESULT_DONE=0

VG=docker
POOL=thinpool
META=thinpoolmeta
PROFILE_NAME=docker-thinpool
THINPOOL_DEV=/dev/mapper/docker-thinpool

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
result() {
  local line="DCCN_RESULT changed=${CHANGED}" kv
  for kv in "$@"; do line+=" ${kv//[[:space:]]/_}"; done
  printf '%s\n' "$line"
  RESULT_DONE=1
}
die() {
  local code=$1
  shift
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  result "error=${code}"
  exit 1
}
on_exit() {
  local rc=$1
  if [ "$rc" -ne 0 ] && [ "$RESULT_DONE" = 0 ]; then
    result error=unexpected "exit=${rc}"
  fi
}
trap 'on_exit $?' EXIT
run() {
  log "+ $*"
  "$@" >&2
}
trim() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'; }

engine_version() {
  local out
  if [ -n "${ENGINE_VERSION:-}" ]; then
    printf '%s\n' "$ENGINE_VERSION"
    return 0
  fi
  out=$(dockerd --version 2>/dev/null) || return 1
  out=$(printf '%s\n' "$out" | sed -n 's/^Docker version \([^ ,]*\).*/\1/p' | head -n 1)
  [ -n "$out" ] || return 1
  printf '%s\n' "$out"
}

# ensure_lvm2: the document installs lvm2 first (`yum install -y lvm2`); apt-get first on Debian.
ensure_lvm2() {
  local m ids="" managers=(dnf yum apt-get) f="${ROOT}/etc/os-release"
  command -v lvcreate >/dev/null 2>&1 && return 0
  [ -r "$f" ] || f="${ROOT}/usr/lib/os-release"
  if [ -r "$f" ]; then
    ids=$(sed -n -e 's/^ID=//p' -e 's/^ID_LIKE=//p' "$f" | tr -d '"'"'" | tr '\n' ' ')
  fi
  case " ${ids} " in
    *" debian "* | *" ubuntu "*) managers=(apt-get dnf yum) ;;
  esac
  for m in "${managers[@]}"; do
    if command -v "$m" >/dev/null 2>&1; then
      if [ "$m" = apt-get ]; then
        export DEBIAN_FRONTEND=noninteractive
        run apt-get install -y --no-install-recommends lvm2
      else
        run "$m" install -y lvm2
      fi
      CHANGED=1
      command -v lvcreate >/dev/null 2>&1 || die no-lvm2 "installed lvm2 with ${m}, but lvcreate is still missing"
      return 0
    fi
  done
  die no-package-manager "lvm2 is not installed and neither dnf, yum nor apt-get is available to install it"
}

DEVICE="${DEVICE:-}"
[ -n "$DEVICE" ] || die no-device "DEVICE is not set: give the raw data disk for the thin pool, e.g. DEVICE=/dev/sdb"
THRESHOLD="${AUTOEXTEND_THRESHOLD:-80}"
PERCENT="${AUTOEXTEND_PERCENT:-20}"
case "${THRESHOLD}${PERCENT}" in
  *[!0-9]*) die bad-autoextend "AUTOEXTEND_THRESHOLD and AUTOEXTEND_PERCENT must be whole numbers" ;;
esac

# 1. The engine must still support devicemapper, checked before anything is touched.
if ! engine=$(engine_version); then
  die engine-version-unknown "cannot tell the engine version (no dockerd on PATH?): install the engine" \
    "first (scripts/engine-install.sh) or set ENGINE_VERSION"
fi
major="${engine%%.*}"
case "$major" in
  '' | *[!0-9]*) die engine-version-unknown "cannot parse the engine version '${engine}'" ;;
esac
if [ "$major" -ge 25 ]; then
  die engine-too-new "Docker Engine ${engine} has no devicemapper storage driver (deprecated in 20.10," \
    "removed in 25.0): use overlay2 (scripts/storage-overlay2.sh) or an engine older than 25"
fi

# 2. DEVICE must exist (checked before lvm2 is installed, so a typo changes nothing).
if ! blockdev --getsize64 "$DEVICE" >/dev/null 2>&1; then
  die device-missing "device not found (or not a block device): ${DEVICE}. Nothing was changed."
fi

ensure_lvm2

profile_file="${ROOT}/etc/lvm/profile/${PROFILE_NAME}.profile"
profile_text="activation {
    thin_pool_autoextend_threshold=${THRESHOLD}
    thin_pool_autoextend_percent=${PERCENT}
}"

# 3. What is there already?
created=0
if vgs --noheadings -o vg_name "$VG" >/dev/null 2>&1; then
  # The volume group exists: it must be ours, on DEVICE, with a finished thin pool.
  if ! pv_vg=$(pvs --noheadings -o vg_name -- "$DEVICE" 2>/dev/null); then
    die device-not-in-vg "volume group ${VG} exists, but DEVICE=${DEVICE} is not a physical volume" \
      "(missing or renamed?): check \`pvs\` and set DEVICE to the disk of volume group ${VG}"
  fi
  pv_vg=$(printf '%s' "$pv_vg" | trim)
  if [ "$pv_vg" != "$VG" ]; then
    die device-not-in-vg "volume group ${VG} exists, but DEVICE=${DEVICE} belongs to '${pv_vg:-no volume group}'"
  fi
  pool_attr=$(lvs --noheadings -o lv_name,lv_attr "$VG" 2>/dev/null | awk -v n="$POOL" '$1 == n { print $2 }')
  case "$pool_attr" in
    t*) log "volume group ${VG} with thin pool ${POOL} already exists" ;;
    *)
      die vg-without-thinpool "volume group ${VG} exists on ${DEVICE} but has no thin pool ${VG}/${POOL}" \
        "(left over from an interrupted run, or used for something else). Nothing was changed." \
        "To start over, as the document says: lvremove /dev/${VG}/${POOL}; lvremove /dev/${VG}/${META};" \
        "vgremove ${VG}; pvremove ${DEVICE}"
      ;;
  esac
else
  # A fresh setup: DEVICE must be free.
  is_pv=0
  if pv_vg=$(pvs --noheadings -o vg_name -- "$DEVICE" 2>/dev/null); then
    is_pv=1
    pv_vg=$(printf '%s' "$pv_vg" | trim)
    if [ -n "$pv_vg" ]; then
      die foreign-vg "${DEVICE} already belongs to volume group '${pv_vg}', not ${VG}: refusing to touch it." \
        "Nothing was changed."
    fi
  else
    rc=0
    sig=$(blkid -p -o export -- "$DEVICE" 2>/dev/null) || rc=$?
    case "$rc" in
      0)
        sig=$(printf '%s\n' "$sig" | grep -E '^(PT)?TYPE=' | tr '\n' ' ')
        die device-in-use "${DEVICE} is not empty (${sig% }): refusing to overwrite it. If the data on it" \
          "is really not needed, wipe it by hand (wipefs -a ${DEVICE}) and run again. Nothing was changed."
        ;;
      2) ;; # nothing found: an empty disk
      *) die device-probe-failed "blkid could not probe ${DEVICE} (exit ${rc})" ;;
    esac
  fi

  # 4. The document's steps.
  CHANGED=1
  created=1
  if [ "$is_pv" = 0 ]; then
    run pvcreate "$DEVICE"
  fi
  run vgcreate "$VG" "$DEVICE"
  run lvcreate --wipesignatures y -n "$POOL" "$VG" -l 95%VG
  run lvcreate --wipesignatures y -n "$META" "$VG" -l 1%VG
  run lvconvert -y --zero n -c 512K --thinpool "${VG}/${POOL}" --poolmetadata "${VG}/${META}"
fi

# 5. The autoextend profile, by content.
profile=unchanged
if [ ! -f "$profile_file" ] || [ "$(cat "$profile_file")" != "$profile_text" ]; then
  install -d -m 0755 "${profile_file%/*}"
  printf '%s\n' "$profile_text" >"${profile_file}.tmp"
  chmod 0644 "${profile_file}.tmp"
  mv -f "${profile_file}.tmp" "$profile_file"
  log "wrote ${profile_file}"
  profile=written
  CHANGED=1
fi

# 6. Attach it to the pool. Re-applied when the profile text changed, so LVM re-reads it.
metadataprofile=unchanged
current_profile=$(lvs --noheadings -o lv_profile "${VG}/${POOL}" 2>/dev/null | trim || true)
if [ "$current_profile" != "$PROFILE_NAME" ] || [ "$profile" = written ]; then
  run lvchange --metadataprofile "$PROFILE_NAME" "${VG}/${POOL}"
  metadataprofile="set"
  CHANGED=1
fi

# 7. Show the result (monitoring must be "monitored" for autoextend to work).
run lvs -o+seg_monitor || true

if [ "$CHANGED" = 0 ]; then
  log "nothing changed"
fi
result "vg=${VG}" "thinpool=${THINPOOL_DEV}" "device=${DEVICE}" "engine=${engine}" "created=${created}" \
  "profile=${profile}" "metadataprofile=${metadataprofile}"
