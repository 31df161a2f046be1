#!/usr/bin/env bash
# cluster-lock.sh - the cluster-wide lock (lib/cluster-lock.ts), kept on the first configured manager:
# flock(1) on LOCK_DIR/cluster.lock, held by this script for as long as its caller keeps the SSH
# channel open and sends a line at least every HEARTBEAT seconds. A caller that dies (its TCP
# connection closes: end of input) or goes silent (its machine vanished: no line for HEARTBEAT
# seconds) lets this script end, and the kernel releases the lock with it.
#
# Runs with the rest of the channel's standard input (lib/remote-script.ts scriptStdinKeepInput).
#
# Environment:
#   LOCK_DIR      where the lock and its holder's description live, default /run/dccn-swarm (tmpfs:
#                 nothing survives a reboot, nor does any holder)
#   WAIT          seconds to wait for a lock someone else holds, default 60 (0: do not wait)
#   HEARTBEAT     seconds without a line from the caller after which the lock is given up, default 30
#   HOLDER        the caller's description, `who=... pid=... command=...` (values percent-encoded)
#   TOKEN         the caller's hand-over token: a process it starts may present it as PARENT_TOKEN
#   PARENT_TOKEN  the token of the holder that started the caller: the lock is the caller's already
#
# Output, one line each on stdout:
#   DCCN_LOCK busy <holder> since=<time>        someone else holds it; waiting up to WAIT seconds
#   DCCN_LOCK held                              this caller holds it (until its input ends)
#   DCCN_LOCK inherited <holder> since=<time>   held by the caller's parent (PARENT_TOKEN); exit 0
#   DCCN_LOCK timeout <holder> since=<time>     still held after WAIT seconds; exit 3
#   DCCN_LOCK error=no-flock                    flock(1) (util-linux) is missing; exit 4
set -euo pipefail

dir=${LOCK_DIR:-/run/dccn-swarm}
wait_s=${WAIT:-60}
heartbeat=${HEARTBEAT:-30}

command -v flock >/dev/null 2>&1 || { echo "DCCN_LOCK error=no-flock"; exit 4; }
umask 077
mkdir -p "$dir"
exec 9>>"$dir/cluster.lock"

holder() {
	local h
	h=$(head -n 1 "$dir/holder" 2>/dev/null | head -c 2048 || true)
	printf '%s' "${h:-who=unknown}"
}

if ! flock -n 9; then
	if [ -n "${PARENT_TOKEN:-}" ] && [ "$(cat "$dir/token" 2>/dev/null || true)" = "$PARENT_TOKEN" ]; then
		echo "DCCN_LOCK inherited $(holder)"
		exit 0
	fi
	echo "DCCN_LOCK busy $(holder)"
	if ! flock -w "$wait_s" 9; then
		echo "DCCN_LOCK timeout $(holder)"
		exit 3
	fi
fi
printf '%s since=%s\n' "${HOLDER:-who=unknown}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/holder"
printf '%s\n' "${TOKEN:-}" >"$dir/token"
echo "DCCN_LOCK held"
# Held while the caller lives: each line is a heartbeat; end of input or silence ends the hold.
while IFS= read -r -t "$heartbeat" _; do :; done
# Released: the description goes first, the lock with this process.
: >"$dir/holder"
: >"$dir/token"
