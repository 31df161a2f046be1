#!/usr/bin/env bash
# bind-paths.sh - make the host paths a stack's services bind-mount, where they do not exist.
#
# A service whose bind-mount source is missing on its node does not start ("invalid mount config
# for type bind: bind source path does not exist"). In production the administrators put the
# data there; a lab node has none of it. For a stack entry with `overrides.createBindPaths: true`
# the program runs this on every node: each missing path becomes an empty directory (mode 755,
# owner root). A path that exists, directory or file, is left as it is. Nothing is ever removed.
#
# Input: the absolute paths on stdin, one per line (empty lines ignored).
# Environment:
#   DCCN_ROOT  prefix for the paths, for tests. default "".
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> created=<n> existing=<n>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>, codes:
#   bad-path (not absolute, `..`, or `/` itself), mkdir-failed
set -euo pipefail

PROG=bind-paths
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
CHANGED=0
created=0
existing=0

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
fail() {
	log "$2"
	printf 'DCCN_RESULT changed=%s error=%s\n' "$CHANGED" "$1"
	exit 1
}

paths=()
while IFS= read -r p || [[ -n "$p" ]]; do
	[[ -z "$p" ]] && continue
	if [[ "$p" != /* || "$p" == "/" || "/$p/" == *"/../"* ]]; then
		fail bad-path "not an absolute path below /: $p"
	fi
	paths+=("$p")
done

for p in "${paths[@]}"; do
	target="$ROOT$p"
	if [[ -e "$target" ]]; then
		existing=$((existing + 1))
		continue
	fi
	if ! (umask 022 && mkdir -p "$target"); then
		fail mkdir-failed "cannot make $target"
	fi
	log "made $target"
	CHANGED=1
	created=$((created + 1))
done

printf 'DCCN_RESULT changed=%s created=%s existing=%s\n' "$CHANGED" "$created" "$existing"
