#!/usr/bin/env bash
# storage-overlay2.sh - storage for the overlay2 driver, optionally on a dedicated logical volume.
#
# The storage step for engines without devicemapper (25.0 and newer) or by choice. Without DEVICE
# there is nothing to set up: overlay2 lives in /var/lib/docker on the root file system. With
# DEVICE, /var/lib/docker gets its own logical volume:
#   pvcreate DEVICE; vgcreate VG DEVICE; lvcreate --wipesignatures y -n LV VG -l LV_EXTENTS
#   mkfs.xfs -n ftype=1 (or mkfs.ext4); an /etc/fstab entry; mounted at MOUNTPOINT.
# Existing engine data in MOUNTPOINT is kept: the engine is stopped, the old directory renamed to
# MOUNTPOINT.pre-dccn-swarm, copied onto the new volume (cp -a), and the engine started again.
# daemon.json is not written here: scripts/daemon-json.sh with STORAGE_DRIVER=overlay2 does it.
#
# Environment (all optional):
#   DEVICE      raw data disk, e.g. /dev/sdb; empty: no dedicated volume.
#   VG          volume group, default docker.
#   LV          logical volume, default data (/dev/docker/data, /dev/mapper/docker-data).
#   LV_EXTENTS  size given to lvcreate -l, default 100%FREE.
#   FSTYPE      xfs (default) or ext4.
#   MOUNTPOINT  default /var/lib/docker.
#   DCCN_ROOT   prefix for file paths (/etc/fstab, MOUNTPOINT, /run), for tests. default "".
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> driver=overlay2 device=<DEVICE|none> volume=<mapper path|none>
#               mountpoint=<MOUNTPOINT> fstab=<unchanged|added|none> mounted=<already|now|none>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>, codes:
#   bad-fstype, device-missing, device-in-use, foreign-vg, device-not-in-vg, vg-has-thinpool,
#   lv-has-other-fs, fstab-conflict, mounted-elsewhere, engine-running, no-lvm2
set -euo pipefail

PROG=storage-overlay2
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
CHANGED=0
RESULT_DONE=0

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
# use_systemctl: systemd runs this node, or the systemctl on PATH is not systemd's own (a shim
# such as the lab's). systemd's systemctl in a container without systemd as PID 1 is not used.
use_systemctl() {
  command -v systemctl >/dev/null 2>&1 || return 1
  [ -d "${ROOT}/run/systemd/system" ] && return 0
  ! systemctl --version 2>/dev/null | grep -q '^systemd '
}
have_sysv() { [ -x "${ROOT}/etc/init.d/docker" ] && command -v service >/dev/null 2>&1; }

DEVICE="${DEVICE:-}"
VG="${VG:-docker}"
LV="${LV:-data}"
LV_EXTENTS="${LV_EXTENTS:-100%FREE}"
FSTYPE="${FSTYPE:-xfs}"
MOUNTPOINT="${MOUNTPOINT:-/var/lib/docker}"
MOUNTPOINT="${MOUNTPOINT%/}"
case "$FSTYPE" in
  xfs) mkfs_cmd=(mkfs.xfs -n ftype=1) ;; # overlay2 needs d_type support on xfs
  ext4) mkfs_cmd=(mkfs.ext4 -q) ;;
  *) die bad-fstype "FSTYPE must be xfs or ext4, not '${FSTYPE}'" ;;
esac

if [ -z "$DEVICE" ]; then
  log "no DEVICE: overlay2 uses ${MOUNTPOINT} on the file system that holds it; nothing to set up"
  result driver=overlay2 device=none volume=none "mountpoint=${MOUNTPOINT}" fstab=none mounted=none
  exit 0
fi

command -v lvcreate >/dev/null 2>&1 ||
  die no-lvm2 "a dedicated volume needs LVM: install lvm2 (e.g. apt-get install lvm2 / dnf install lvm2)"

lv_path="/dev/${VG}/${LV}"
mapper_path="/dev/mapper/${VG//-/--}-${LV//-/--}"
mnt="${ROOT}${MOUNTPOINT}"
fstab="${ROOT}/etc/fstab"

# 1. Check everything first: an error below changes nothing.
if ! blockdev --getsize64 "$DEVICE" >/dev/null 2>&1; then
  die device-missing "device not found (or not a block device): ${DEVICE}. Nothing was changed."
fi

need_pv=0
need_vg=0
need_lv=0
if vgs --noheadings -o vg_name "$VG" >/dev/null 2>&1; then
  pv_vg=$(pvs --noheadings -o vg_name -- "$DEVICE" 2>/dev/null | trim || true)
  [ "$pv_vg" = "$VG" ] ||
    die device-not-in-vg "volume group ${VG} exists, but DEVICE=${DEVICE} is not one of its physical volumes"
  lv_list=$(lvs --noheadings -o lv_name,lv_attr "$VG" 2>/dev/null || true)
  if ! printf '%s\n' "$lv_list" | awk -v n="$LV" '$1 == n { found = 1 } END { exit !found }'; then
    if printf '%s\n' "$lv_list" | awk '$2 ~ /^t/ { found = 1 } END { exit !found }'; then
      die vg-has-thinpool "volume group ${VG} holds a devicemapper thin pool: remove it first" \
        "(lvremove ${VG}/thinpool) or choose another VG"
    fi
    need_lv=1
  fi
else
  if pv_vg=$(pvs --noheadings -o vg_name -- "$DEVICE" 2>/dev/null); then
    pv_vg=$(printf '%s' "$pv_vg" | trim)
    [ -z "$pv_vg" ] ||
      die foreign-vg "${DEVICE} already belongs to volume group '${pv_vg}', not ${VG}: refusing to touch it"
  else
    rc=0
    sig=$(blkid -p -o export -- "$DEVICE" 2>/dev/null) || rc=$?
    case "$rc" in
      0)
        sig=$(printf '%s\n' "$sig" | grep -E '^(PT)?TYPE=' | tr '\n' ' ')
        die device-in-use "${DEVICE} is not empty (${sig% }): refusing to overwrite it; wipe it by hand" \
          "(wipefs -a ${DEVICE}) if its data is really not needed"
        ;;
      2) ;;
      *) die device-probe-failed "blkid could not probe ${DEVICE} (exit ${rc})" ;;
    esac
    need_pv=1
  fi
  need_vg=1
  need_lv=1
fi

need_mkfs=0
if [ "$need_lv" = 1 ]; then
  need_mkfs=1
else
  rc=0
  fs=$(blkid -p -o value -s TYPE -- "$lv_path" 2>/dev/null) || rc=$?
  case "$rc" in
    0) [ "$fs" = "$FSTYPE" ] || die lv-has-other-fs "${lv_path} holds a ${fs} file system, not ${FSTYPE}" ;;
    2) need_mkfs=1 ;;
    *) die device-probe-failed "blkid could not probe ${lv_path} (exit ${rc})" ;;
  esac
fi

fstab_line="${mapper_path} ${MOUNTPOINT} ${FSTYPE} defaults 0 0"
fstab_state=unchanged
existing=$(awk -v m="$MOUNTPOINT" '$1 !~ /^#/ && $2 == m { print $1 " " $3 }' "$fstab" 2>/dev/null || true)
if [ -z "$existing" ]; then
  fstab_state=added
elif [ "$existing" != "${mapper_path} ${FSTYPE}" ] && [ "$existing" != "${lv_path} ${FSTYPE}" ]; then
  die fstab-conflict "${fstab} already mounts something else at ${MOUNTPOINT} (${existing}): fix it by hand"
fi

mounted=already
source=$(findmnt -n -o SOURCE --mountpoint "$mnt" 2>/dev/null || true)
if [ -z "$source" ]; then
  mounted=now
elif [ "$source" != "$mapper_path" ] && [ "$source" != "$lv_path" ]; then
  die mounted-elsewhere "${mnt} is already a mount of ${source}, not ${mapper_path}"
fi

# 2. Apply.
if [ "$need_pv" = 1 ]; then
  CHANGED=1
  run pvcreate "$DEVICE"
fi
if [ "$need_vg" = 1 ]; then
  CHANGED=1
  run vgcreate "$VG" "$DEVICE"
fi
if [ "$need_lv" = 1 ]; then
  CHANGED=1
  run lvcreate --wipesignatures y -n "$LV" "$VG" -l "$LV_EXTENTS"
fi
if [ "$need_mkfs" = 1 ]; then
  CHANGED=1
  run "${mkfs_cmd[@]}" "$lv_path"
fi
if [ "$fstab_state" = added ]; then
  CHANGED=1
  install -d -m 0755 "${fstab%/*}"
  {
    printf '# dccn-swarm: the Docker data volume (scripts/storage-overlay2.sh)\n'
    printf '%s\n' "$fstab_line"
  } >>"$fstab"
  log "added to ${fstab}: ${fstab_line}"
  if use_systemctl; then
    run systemctl daemon-reload
  fi
fi

if [ "$mounted" = now ]; then
  CHANGED=1
  was_running=0
  if [ -d "$mnt" ] && [ -n "$(ls -A "$mnt" 2>/dev/null)" ]; then
    # Keep the engine's data: stop it, move the directory aside, copy it onto the new volume.
    if use_systemctl; then
      if systemctl is-active --quiet docker >/dev/null 2>&1; then
        was_running=1
      fi
      run systemctl stop docker.socket docker || true
    elif have_sysv; then
      if timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        was_running=1
        run service docker stop
      fi
    elif timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      die engine-running "the engine is running and there is no init system to stop it: stop dockerd" \
        "by hand, then run again"
    fi
    old="${mnt}.pre-dccn-swarm"
    [ ! -e "$old" ] || die old-data-exists "${old} exists from an earlier run: move it away, then run again"
    run mv "$mnt" "$old"
    install -d -m 0710 "$mnt"
    run mount -t "$FSTYPE" "$mapper_path" "$mnt"
    run cp -a "${old}/." "${mnt}/"
    log "copied the old contents of ${MOUNTPOINT} onto ${mapper_path}; ${old} can be removed once the engine runs"
    if [ "$was_running" = 1 ]; then
      if use_systemctl; then
        run systemctl start docker
      else
        run service docker start
      fi
    fi
  else
    install -d -m 0710 "$mnt"
    run mount -t "$FSTYPE" "$mapper_path" "$mnt"
  fi
fi

if [ "$CHANGED" = 0 ]; then
  log "nothing changed"
fi
result driver=overlay2 "device=${DEVICE}" "volume=${mapper_path}" "mountpoint=${MOUNTPOINT}" \
  "fstab=${fstab_state}" "mounted=${mounted}"
