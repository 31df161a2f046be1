#!/usr/bin/env bash
# swarm-backup.sh - copy a manager's swarm state (Docker's "administer and maintain a swarm": back
# up the swarm). The engine is stopped for the copy, as the guide requires (the Raft data must not
# change under tar), and started again whatever happens (tar failing, the reader going away, the
# SSH connection dropping); then it must answer again.
#
# The archive (a tar.gz of /var/lib/docker/swarm, holding the Raft log and the keys that encrypt it)
# is streamed to stdout as tar makes it, and nothing else goes there: it never lands on the node's
# disk, and the caller (tools/ops.ts over lib/ssh.ts execStream) writes it to its file as it comes.
# It is a secret: the caller stores it with mode 600 (or encrypted) and prints nothing of it. The
# sha256 and byte count of the stream are computed here as it passes, so the caller can check what
# arrived. Progress and the DCCN_RESULT line go to stderr.
#
# Environment (all optional):
#   SWARM_DIR     default /var/lib/docker/swarm
#   WAIT_TIMEOUT  seconds to wait for the engine after the restart, default 60
#
# Output, last line on stderr:
#   DCCN_RESULT changed=0 bytes=<archive size> sha256=<hex> engine_version=<version> autolock=<true|false>
# On failure (exit 1): DCCN_RESULT changed=0 error=<not-a-manager|no-swarm-dir|stop-failed|tar-failed|start-failed>
set -euo pipefail
# A reader that goes away must not kill this script before the engine is started again: writes then
# fail with EPIPE instead of SIGPIPE, and a hang-up is ignored.
trap '' PIPE HUP

swarm_dir=${SWARM_DIR:-/var/lib/docker/swarm}
wait_timeout=${WAIT_TIMEOUT:-60}

# fd 3 is the archive (the channel's stdout); everything else the script and its commands print goes to stderr.
exec 3>&1 1>&2

say() { echo "swarm-backup: $*" >&2 || true; }
result() { echo "DCCN_RESULT $*" >&2 || true; }
fail() {
	say "error: $2"
	result "changed=0 error=$1"
	exit 1
}

wait_engine() {
	local i
	for ((i = 0; i < wait_timeout; i++)); do
		if docker info >/dev/null 2>&1; then return 0; fi
		sleep 1
	done
	return 1
}

state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || state="unknown false"
[[ "$state" == "active true" || "$state" == "locked "* ]] || fail not-a-manager "this node is no swarm manager (swarm state: $state)"
[[ -d "$swarm_dir/raft" ]] || fail no-swarm-dir "$swarm_dir/raft does not exist"
version=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)
autolock=$(docker info --format '{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}' 2>/dev/null || echo unknown)

# Only the checksum and the byte count are kept here, never the archive.
tmp=$(mktemp -d /tmp/dccn-backup.XXXXXX)
chmod 700 "$tmp"
stopped=0
cleanup() {
	# The engine first: nothing before it may fail.
	if [[ $stopped == 1 ]]; then systemctl start docker >/dev/null 2>&1 || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

say "stopping the engine"
stopped=1
systemctl stop docker || fail stop-failed "systemctl stop docker failed"
say "archiving $swarm_dir to the caller as a stream"
mkfifo "$tmp/sum" "$tmp/count"
sha256sum <"$tmp/sum" >"$tmp/sha256" &
sum_pid=$!
wc -c <"$tmp/count" >"$tmp/bytes" &
count_pid=$!
rc=0
# cat, not tee, writes to the caller: tee drops an output that fails with EPIPE and still succeeds
# (--output-error is missing from older coreutils), cat fails, and pipefail reports it.
tar -C "$(dirname "$swarm_dir")" -czf - "$(basename "$swarm_dir")" | tee "$tmp/sum" "$tmp/count" | cat >&3 || rc=$?
# The archive is complete (or cut short): the caller sees its end now, not after the restart.
exec 3>&-
wait "$sum_pid" "$count_pid" || true

say "starting the engine"
systemctl start docker >/dev/null || fail start-failed "systemctl start docker failed"
stopped=0
wait_engine || fail start-failed "the engine did not answer within ${wait_timeout}s after the restart"
[[ $rc == 0 ]] || fail tar-failed "the archive of $swarm_dir was not sent whole (tar or its reader failed, exit $rc)"

bytes=$(tr -d ' \n' <"$tmp/bytes")
sha=$(cut -d' ' -f1 <"$tmp/sha256")
result "changed=0 bytes=$bytes sha256=$sha engine_version=$version autolock=$autolock"
