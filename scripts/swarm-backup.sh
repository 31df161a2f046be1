#!/usr/bin/env bash
# swarm-backup.sh - copy a manager's swarm state (Docker's "administer and maintain a swarm": back
# up the swarm). The engine is stopped for the copy, as the guide requires (the Raft data must not
# change under tar), and started again whatever happens; then it must answer again.
#
# The archive (a tar.gz of /var/lib/docker/swarm, holding the Raft log and the keys that encrypt it)
# is written base64-encoded to stdout between the lines DCCN_ARCHIVE_BEGIN and DCCN_ARCHIVE_END; it
# is a secret: the caller stores it with mode 600 and prints nothing of it. Progress goes to stderr.
#
# Environment (all optional):
#   SWARM_DIR     default /var/lib/docker/swarm
#   WAIT_TIMEOUT  seconds to wait for the engine after the restart, default 60
#
# Output, last line on stdout:
#   DCCN_RESULT changed=0 bytes=<archive size> engine_version=<version> autolock=<true|false>
# On failure (exit 1): DCCN_RESULT changed=0 error=<not-a-manager|no-swarm-dir|stop-failed|tar-failed|start-failed>
set -euo pipefail

swarm_dir=${SWARM_DIR:-/var/lib/docker/swarm}
wait_timeout=${WAIT_TIMEOUT:-60}

fail() {
	echo "swarm-backup: $2" >&2
	echo "DCCN_RESULT changed=0 error=$1"
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

tmp=$(mktemp -d /tmp/dccn-backup.XXXXXX)
chmod 700 "$tmp"
restarted=0
cleanup() {
	rm -rf "$tmp"
	if [[ $restarted == 0 ]]; then systemctl start docker >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "swarm-backup: stopping the engine" >&2
systemctl stop docker || fail stop-failed "systemctl stop docker failed"
echo "swarm-backup: archiving $swarm_dir" >&2
tar -C "$(dirname "$swarm_dir")" -czf "$tmp/swarm.tar.gz" "$(basename "$swarm_dir")" || fail tar-failed "tar of $swarm_dir failed"
echo "swarm-backup: starting the engine" >&2
restarted=1
systemctl start docker >/dev/null || fail start-failed "systemctl start docker failed"
wait_engine || fail start-failed "the engine did not answer within ${wait_timeout}s after the restart"

bytes=$(stat -c %s "$tmp/swarm.tar.gz")
echo DCCN_ARCHIVE_BEGIN
base64 -w 76 "$tmp/swarm.tar.gz"
echo DCCN_ARCHIVE_END
echo "DCCN_RESULT changed=0 bytes=$bytes engine_version=$version autolock=$autolock"
