#!/usr/bin/env bash
# registry-data.sh - the private registry's data directory on a node that may run it.
#
# The document (chapter 3.2) keeps the registry's images under /mnt/docker/registry on the shared
# storage. This creates the configured directory (mode 755) when it is missing; an existing
# directory and everything in it (the images pushed so far) is left exactly as it is. Nothing is
# ever removed: the registry's images outlive the registry's configuration.
#
# Environment:
#   DATA_PATH   required, an absolute path other than /, e.g. /mnt/docker/registry.
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> path=<path> dir=<exists|created>
# On failure (exit status 1): DCCN_RESULT changed=0 error=<code>, codes:
#   no-path, bad-path, not-a-directory
set -euo pipefail

PROG=registry-data
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  local code=$1
  shift
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  printf 'DCCN_RESULT changed=0 error=%s\n' "$code"
  exit 1
}

d="${DATA_PATH:-}"
[ -n "$d" ] || die no-path "DATA_PATH is not set, e.g. DATA_PATH=/mnt/docker/registry"
case "$d" in
  / | *[[:space:]]* | *,* | *:*) die bad-path "DATA_PATH '${d}' must be an absolute path other than /, without spaces, commas or colons" ;;
  /*) ;;
  *) die bad-path "DATA_PATH '${d}' is not an absolute path" ;;
esac

if [ -e "$d" ] && [ ! -d "$d" ]; then
  die not-a-directory "${d} exists and is not a directory; move it away or choose another registry.dataPath"
fi
if [ -d "$d" ]; then
  log "${d} exists; left as it is"
  printf 'DCCN_RESULT changed=0 path=%s dir=exists\n' "$d"
  exit 0
fi
mkdir -p "$d"
chmod 0755 "$d"
log "created ${d}"
printf 'DCCN_RESULT changed=1 path=%s dir=created\n' "$d"
