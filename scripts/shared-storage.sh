#!/usr/bin/env bash
# shared-storage.sh - ensure and check the shared storage (`dccn-swarm:sharedStorage`) on this node.
#
# The DCCN document (3.1, 3.2): every node NFS-mounts /mnt/docker, where the stacks keep their data;
# after the 2017/2018 outages hanging NFS mounts left nodes unresponsive (4.5.1). Safe to re-run:
# - with NFS_SOURCE (server:/export): the fstab line `NFS_SOURCE SHARED_PATH nfs NFS_OPTIONS 0 0` is
#   written (added, or the line for SHARED_PATH replaced; the old file kept as fstab.dccn-swarm.bak)
#   and the path mounted from it when it is not mounted; a mount from another source is refused,
#   never unmounted (what uses it would lose its files);
# - without NFS_SOURCE the mount must already be there (the kickstart's, or the lab's bind): it is
#   only checked;
# - then, every time: SHARED_PATH is a mount point (from /proc/self/mountinfo, which never blocks),
#   not mounted read-only, answers and takes a probe file (created and removed), each within
#   CHECK_TIMEOUT seconds: a hanging mount fails the step in bounded time, it never hangs the run.
# A second run with the same input changes nothing and says changed=0.
#
# Environment:
#   SHARED_PATH     the mount point, e.g. /mnt/docker (required).
#   NFS_SOURCE      server:/export to mount (IPv6 servers in brackets); empty: check only.
#   NFS_OPTIONS     mount options for the fstab line, default rw,hard,timeo=600,retrans=2,_netdev.
#   CHECK_TIMEOUT   seconds a mount or a check may take, default 10.
#   DCCN_ROOT       prefix for /etc/fstab and the probed path, for tests. default "".
#   DCCN_MOUNTINFO  the mount table to read, for tests. default /proc/self/mountinfo.
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> path=<path> mode=<nfs|existing> fstab=<none|unchanged|written>
#               mounted=<0|1> fstype=<type>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>, codes:
#   bad-input, no-nfs-client, other-source, mount-failed, not-mounted, read-only, not-answering,
#   not-writable
set -euo pipefail

PROG=shared-storage
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
MOUNTINFO="${DCCN_MOUNTINFO:-/proc/self/mountinfo}"
SHARED_PATH="${SHARED_PATH:-}"
NFS_SOURCE="${NFS_SOURCE:-}"
NFS_OPTIONS="${NFS_OPTIONS:-rw,hard,timeo=600,retrans=2,_netdev}"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-10}"
NODE="$(hostname 2>/dev/null || echo "this node")"
CHANGED=0
RESULT_DONE=0
FSTAB_STATE=none
MOUNTED=0

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
WORK=""
on_exit() {
  local rc=$1
  [ -z "$WORK" ] || rm -rf "$WORK"
  if [ "$rc" -ne 0 ] && [ "$RESULT_DONE" = 0 ]; then
    result error=unexpected "exit=${rc}"
  fi
}
trap 'on_exit $?' EXIT

# Input checks (the program validates the same; this guards a hand-run script).
case "$SHARED_PATH" in
  /*) ;;
  *) die bad-input "SHARED_PATH must be an absolute path such as /mnt/docker, got '${SHARED_PATH}'" ;;
esac
if [ "$SHARED_PATH" = / ] || [[ "$SHARED_PATH" =~ [[:space:],#\\] ]]; then
  die bad-input "SHARED_PATH must be a path other than / without blanks, commas or '#', got '${SHARED_PATH}'"
fi
if ! [[ "$CHECK_TIMEOUT" =~ ^[1-9][0-9]{0,2}$ ]]; then
  die bad-input "CHECK_TIMEOUT must be a whole number of seconds, got '${CHECK_TIMEOUT}'"
fi
if [ -n "$NFS_SOURCE" ] && { [[ "$NFS_SOURCE$NFS_OPTIONS" =~ [[:space:]#\\] ]] || [[ "$NFS_SOURCE" != *:/* ]]; }; then
  die bad-input "NFS_SOURCE must be server:/export and NFS_OPTIONS options without blanks, got '${NFS_SOURCE}' '${NFS_OPTIONS}'"
fi
WORK=$(mktemp -d)

# bounded CMD...: run CMD with at most CHECK_TIMEOUT seconds (then TERM, and KILL a second later);
# its output goes to a file, so a stuck process cannot hold this script's output open. 124: time-out.
bounded() {
  local rc=0
  timeout -k 1 "$CHECK_TIMEOUT" "$@" </dev/null >"$WORK/out" 2>&1 || rc=$?
  [ "$rc" -ne 137 ] || rc=124
  return "$rc"
}

# The mount table's entry for SHARED_PATH (the one on top when mounts are stacked):
# "<per-mount options> <fstype> <source> <super options>", or nothing. Reading it never blocks.
mount_entry() {
  awk -v p="$SHARED_PATH" '
    { sep = 0; for (i = 7; i <= NF; i++) if ($i == "-") { sep = i; break } }
    sep && $5 == p { e = $6 " " $(sep + 1) " " $(sep + 2) " " $(sep + 3) }
    END { if (e != "") print e }' "$MOUNTINFO"
}

HERE="${ROOT}${SHARED_PATH}"
if [ -n "$NFS_SOURCE" ]; then
  MODE=nfs
  fstab="${ROOT}/etc/fstab"
  want="${NFS_SOURCE} ${SHARED_PATH} nfs ${NFS_OPTIONS} 0 0"
  [ -f "$fstab" ] || : >"$fstab"
  # Lines for SHARED_PATH (second field), comments aside.
  current=$(awk -v p="$SHARED_PATH" '$1 !~ /^#/ && $2 == p' "$fstab")
  if [ "$current" = "$want" ] || [ "$(printf '%s\n' "$current" | awk '{ $1 = $1; print }')" = "$want" ]; then
    FSTAB_STATE=unchanged
  else
    cp -p "$fstab" "${fstab}.dccn-swarm.bak"
    awk -v p="$SHARED_PATH" '!($1 !~ /^#/ && $2 == p)' "$fstab" >"$WORK/fstab"
    printf '%s\n' "$want" >>"$WORK/fstab"
    cat "$WORK/fstab" >"$fstab"
    FSTAB_STATE=written
    CHANGED=1
    if [ -n "$current" ]; then log "${fstab}: replaced: ${current}"; fi
    log "${fstab}: wrote: ${want}"
  fi
  entry=$(mount_entry)
  if [ -z "$entry" ]; then
    command -v mount.nfs >/dev/null 2>&1 || die no-nfs-client \
      "${NODE}: mount.nfs is missing: install the NFS client (dnf install nfs-utils, or apt-get install nfs-common), then run pulumi up again"
    if ! bounded mkdir -p "$HERE"; then
      die not-answering "${NODE}: the parent of ${SHARED_PATH} did not answer within ${CHECK_TIMEOUT} s; check the mounts above it"
    fi
    log "mounting ${NFS_SOURCE} at ${SHARED_PATH}"
    rc=0
    bounded mount "$SHARED_PATH" || rc=$?
    if [ "$rc" -ne 0 ]; then
      why=$(tail -n 3 "$WORK/out" | tr '\n' ' ')
      [ "$rc" -ne 124 ] || why="no answer within ${CHECK_TIMEOUT} s"
      die mount-failed "${NODE}: mounting ${NFS_SOURCE} at ${SHARED_PATH} failed (${why}): check that ${NFS_SOURCE%%:/*} exports ${NFS_SOURCE#*:} to this node and answers, then run pulumi up again"
    fi
    MOUNTED=1
    CHANGED=1
  else
    read -r _ _ src _ <<<"$entry"
    if [ "$src" != "$NFS_SOURCE" ]; then
      die other-source "${NODE}: ${SHARED_PATH} is mounted from ${src}, not ${NFS_SOURCE}: stop what uses it and unmount it by hand (umount ${SHARED_PATH}), or set sharedStorage.nfs to what is mounted, then run pulumi up again"
    fi
  fi
else
  MODE=existing
fi

# The checks, every time.
entry=$(mount_entry)
if [ -z "$entry" ]; then
  if [ "$MODE" = existing ]; then
    die not-mounted "${NODE}: ${SHARED_PATH} is not a mount point: mount the shared storage there (the DCCN kickstart's NFS mount), or set sharedStorage.nfs so that pulumi up mounts it"
  fi
  die not-mounted "${NODE}: ${SHARED_PATH} is not mounted after mount: check 'mount ${SHARED_PATH}' on ${NODE}"
fi
read -r opts fstype _ superopts <<<"$entry"
if [[ ",${opts},${superopts}," == *,ro,* ]]; then
  die read-only "${NODE}: ${SHARED_PATH} is mounted read-only (${fstype}): the stacks write their data there; remount it read-write (mount -o remount,rw ${SHARED_PATH}) or fix the export, then run pulumi up again"
fi
# shellcheck disable=SC2016 # the probe's own variables
probe='cd -- "$1" || exit 3; f=".dccn-swarm-probe.$2.$$"; if ! : >"$f"; then exit 4; fi; rm -f -- "$f" || exit 5'
rc=0
bounded bash -c "$probe" probe "$HERE" "$NODE" || rc=$?
case "$rc" in
  0) ;;
  124) die not-answering "${NODE}: ${SHARED_PATH} (${fstype}) did not answer within ${CHECK_TIMEOUT} s, a hanging mount: check the NFS server and the network from ${NODE}; a hung hard mount may need 'umount -f -l ${SHARED_PATH}' or a reboot of ${NODE} (DCCN document 4.5.1), then run pulumi up again" ;;
  3) die not-mounted "${NODE}: ${SHARED_PATH} cannot be entered: $(tail -n 1 "$WORK/out")" ;;
  *)
    if grep -qi 'read-only' "$WORK/out"; then
      die read-only "${NODE}: ${SHARED_PATH} is read-only (${fstype}): the stacks write their data there; make it writable for root, then run pulumi up again"
    fi
    die not-writable "${NODE}: root cannot create a file in ${SHARED_PATH} (${fstype}): $(tail -n 1 "$WORK/out"); check the export's root squashing and permissions, then run pulumi up again"
    ;;
esac
log "${NODE}: ${SHARED_PATH} (${fstype}) is mounted, answers and is writable"
result "path=${SHARED_PATH}" "mode=${MODE}" "fstab=${FSTAB_STATE}" "mounted=${MOUNTED}" "fstype=${fstype}"
