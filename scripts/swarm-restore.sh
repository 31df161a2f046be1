#!/usr/bin/env bash
# swarm-restore.sh - restore a swarm-state backup onto this node (Docker's "administer and maintain
# a swarm": restore from a backup): stop the engine, move the current /var/lib/docker/swarm aside,
# unpack the archive in its place, start the engine, then `docker swarm init --force-new-cluster` so
# that this node is the only manager and does not wait for the managers of the old swarm.
#
# Input: the archive (tar.gz of the swarm directory), base64-encoded, on stdin.
# Environment:
#   ADVERTISE_ADDR  required: the address this manager advertises (its configured address)
#   SWARM_DIR       default /var/lib/docker/swarm
#   WAIT_TIMEOUT    seconds to wait for the engine and the swarm, default 90
#   UNLOCK_KEY      not used here: a swarm with autolock is unlocked by the operator (docker swarm unlock)
#
# Output, last line on stdout:
#   DCCN_RESULT changed=1 previous=<moved|none> node_id=<ID> cluster_id=<ID>
# On failure (exit 1): DCCN_RESULT changed=<0|1> error=<bad-input|bad-archive|stop-failed|start-failed|locked|init-failed>
set -euo pipefail

swarm_dir=${SWARM_DIR:-/var/lib/docker/swarm}
wait_timeout=${WAIT_TIMEOUT:-90}
changed=0

fail() {
	echo "swarm-restore: $2" >&2
	echo "DCCN_RESULT changed=$changed error=$1"
	exit 1
}

# Wait up to wait_timeout seconds until the engine answers as a swarm manager; on time-out, the
# node's last swarm state is left in $state for the message.
wait_manager() {
	for ((i = 0; i < wait_timeout; i++)); do
		docker node ls -q >/dev/null 2>&1 && return 0
		sleep 1
	done
	state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
	return 1
}

[[ -n "${ADVERTISE_ADDR:-}" ]] || fail bad-input "ADVERTISE_ADDR is not set"
tmp=$(mktemp -d /tmp/dccn-restore.XXXXXX)
chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT

base64 -d >"$tmp/swarm.tar.gz" || fail bad-archive "the archive on stdin is not base64"
mkdir "$tmp/x"
tar -C "$tmp/x" -xzf "$tmp/swarm.tar.gz" || fail bad-archive "the archive does not unpack"
[[ -d "$tmp/x/swarm/raft" && -d "$tmp/x/swarm/certificates" ]] || fail bad-archive "the archive holds no swarm directory (swarm/raft, swarm/certificates)"

echo "swarm-restore: stopping the engine" >&2
systemctl stop docker || fail stop-failed "systemctl stop docker failed"
changed=1
previous=none
if [[ -e "$swarm_dir" ]]; then
	aside="$swarm_dir.before-restore.$(date -u +%Y%m%dT%H%M%SZ)"
	mv "$swarm_dir" "$aside"
	chmod 700 "$aside"
	previous=moved
	echo "swarm-restore: the previous swarm state is kept in $aside" >&2
fi
mv "$tmp/x/swarm" "$swarm_dir"
# Overlay VXLAN devices the engine had made but not yet moved into a network's namespace when the
# swarm state was lost stay in the host's namespace; the restored swarm's networks reuse their VNIs
# and names, and every task on them would be rejected ("error creating vxlan interface: file
# exists"). With the engine stopped none of them is in use.
if command -v ip >/dev/null 2>&1; then
	for dev in $(ip -o link show type vxlan 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep '^vx-' || true); do
		ip link delete "$dev" && echo "swarm-restore: removed the stale overlay device $dev" >&2
	done
fi
echo "swarm-restore: starting the engine" >&2
systemctl start docker >/dev/null || fail start-failed "systemctl start docker failed"

state=
for ((i = 0; i < wait_timeout; i++)); do
	state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
	[[ "$state" == active || "$state" == locked ]] && break
	sleep 1
done
[[ "$state" == locked ]] && fail locked "the restored swarm is locked (autolock): run \`docker swarm unlock\` with the unlock key on this node, then \`docker swarm init --force-new-cluster\`"
[[ "$state" == active ]] || fail start-failed "the engine did not come back in the swarm within ${wait_timeout}s (state: ${state:-no answer})"

echo "swarm-restore: docker swarm init --force-new-cluster" >&2
docker swarm init --force-new-cluster --advertise-addr "$ADVERTISE_ADDR" >/dev/null || fail init-failed "docker swarm init --force-new-cluster failed"
wait_manager || fail init-failed "no swarm leader ${wait_timeout}s after --force-new-cluster"

# After --force-new-cluster on a running engine its network agent is left half set up (moby#36860):
# every task placed here is rejected with "cannot create a swarm scoped network when swarm is not
# active" until the engine restarts. One restart, then the same checks again.
echo "swarm-restore: restarting the engine once more (network agent after --force-new-cluster)" >&2
systemctl restart docker >/dev/null || fail start-failed "systemctl restart docker failed after --force-new-cluster"
wait_manager || fail start-failed "the engine did not come back as the swarm's manager ${wait_timeout}s after its restart (state: ${state:-no answer})"
node_id=$(docker info --format '{{.Swarm.NodeID}}')
cluster_id=$(docker info --format '{{.Swarm.Cluster.ID}}')
echo "DCCN_RESULT changed=1 previous=$previous node_id=$node_id cluster_id=$cluster_id"
