#!/usr/bin/env bash
# swarm-restore.sh - restore a swarm-state backup onto this node (Docker's "administer and maintain
# a swarm": restore from a backup): unpack the archive beside the swarm directory and check it, stop
# the engine, keep the current /var/lib/docker/swarm as the ONE previous swarm directory
# (swarm.previous, replacing the one an earlier restore left), put the archive's in its place, start
# the engine, then `docker swarm init --force-new-cluster` so that this node is the only manager and
# does not wait for the managers of the old swarm.
#
# Input: the archive (the tar.gz swarm-backup.sh writes) streamed on stdin. It is unpacked as it
# comes into a private directory on the same file system as the swarm directory (the swap is a
# rename); a cut-short or corrupt stream (gzip's length and CRC), an archive holding anything but
# the swarm directory, links or special files, is refused before the engine is touched.
# Environment:
#   ADVERTISE_ADDR  required: the address this manager advertises (its configured address)
#   SWARM_DIR       default /var/lib/docker/swarm
#   WAIT_TIMEOUT    seconds to wait for the engine and the swarm, default 90
#   UNLOCK_KEY      the unlock key of an autolocked swarm (the stack's swarmUnlockKey, or the key kept
#                   with the backup): the restored manager is locked after every start of its engine
#                   and is unlocked with it (`docker swarm unlock` reading it on its standard input).
#                   Empty: a locked swarm stops the restore (error=locked). Never printed.
#
# Docker cannot re-initialise an autolocked swarm state (`--force-new-cluster` starts the node without
# its unlock key and fails, leaving the node out of any swarm): a restored autolocked swarm is unlocked,
# then autolock is turned off (`docker swarm update --autolock=false`, which needs the restored
# node to hold the quorum alone: a backup of a swarm with one manager) before the re-initialisation;
# `pulumi up --refresh` turns it on again with a new key. A backup of several managers under autolock
# cannot be re-initialised: refused (error=locked) before the init, the node left unlocked.
#
# Output, last line on stdout:
#   DCCN_RESULT changed=1 previous=<dir|none> previous_from=<this|earlier|none> removed_old=<n> bytes=<n> sha256=<hex> node_id=<ID> cluster_id=<ID> autolock_turned_off=<0|1>
# On failure (exit 1): DCCN_RESULT changed=<0|1> error=<bad-input|bad-archive|stop-failed|start-failed|locked|init-failed>
set -euo pipefail
# The caller going away must not stop this script between stopping and starting the engine.
trap '' PIPE HUP

# The key stays in this shell only: not exported to the commands it runs.
unlock_key=${UNLOCK_KEY:-}
unset UNLOCK_KEY
was_locked=0
autolock_off=0
swarm_dir=${SWARM_DIR:-/var/lib/docker/swarm}
wait_timeout=${WAIT_TIMEOUT:-90}
previous_dir="$swarm_dir.previous"
changed=0

say() { echo "swarm-restore: $*" >&2 || true; }
fail() {
	say "error: $2"
	echo "DCCN_RESULT changed=$changed error=$1" || true
	exit 1
}

# An autolocked swarm's manager is locked after every start of its engine: unlock it with the key
# (on docker's standard input, from a builtin: never on a command line or in a file).
unlock_if_locked() {
	local s err
	s=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
	[[ "$s" == locked ]] || return 0
	[[ -n "$unlock_key" ]] || fail locked "the restored swarm is locked (autolock) and no unlock key was given: keep the stack's swarmUnlockKey output (or pass the key kept with the backup), or run \`docker swarm unlock\` on this node, then \`docker swarm init --force-new-cluster\`"
	say "unlocking the swarm (autolock) with the unlock key"
	was_locked=1
	err=$(printf '%s\n' "$unlock_key" | docker swarm unlock 2>&1 >/dev/null) ||
		fail locked "docker swarm unlock refused the key (${err//$unlock_key/<unlock key>}): the backup was made with another key (the one of its time); run \`docker swarm unlock\` with it on this node, then \`docker swarm init --force-new-cluster\`"
}

# Wait up to wait_timeout seconds until the engine answers as a swarm manager (unlocking it when it
# is locked); on time-out, the node's last swarm state is left in $state for the message.
wait_manager() {
	for ((i = 0; i < wait_timeout; i++)); do
		docker node ls -q >/dev/null 2>&1 && return 0
		unlock_if_locked
		sleep 1
	done
	state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
	return 1
}

# remove_stale_vxlan (run with the engine stopped)
# shellcheck source=scripts/overlay-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/overlay-lib.sh"

[[ -n "${ADVERTISE_ADDR:-}" ]] || fail bad-input "ADVERTISE_ADDR is not set"
parent=$(dirname "$swarm_dir")
[[ -d "$parent" ]] || fail bad-input "$parent does not exist (is the engine installed?)"

tmp=$(mktemp -d /tmp/dccn-restore.XXXXXX)
stage=$(mktemp -d "$parent/.swarm-restore.XXXXXX")
chmod 700 "$tmp" "$stage"
stopped=0
cleanup() {
	if [[ $stopped == 1 ]]; then systemctl start docker >/dev/null 2>&1 || true; fi
	rm -rf "$tmp" "$stage"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

say "receiving the archive and unpacking it beside $swarm_dir"
mkfifo "$tmp/sum" "$tmp/count"
sha256sum <"$tmp/sum" >"$tmp/sha256" &
sum_pid=$!
wc -c <"$tmp/count" >"$tmp/bytes" &
count_pid=$!
rc=0
tee "$tmp/sum" "$tmp/count" | tar -C "$stage" -xzf - || rc=$?
wait "$sum_pid" "$count_pid" || true
bytes=$(tr -d ' \n' <"$tmp/bytes" 2>/dev/null || true)
sha=$(cut -d' ' -f1 <"$tmp/sha256" 2>/dev/null || true)
[[ $rc == 0 ]] || fail bad-archive "the archive did not unpack whole (cut short or corrupt, exit $rc; received ${bytes:-?} bytes, sha256 ${sha:-?}); nothing was changed"
entries=$(ls -A "$stage")
[[ "$entries" == swarm ]] || fail bad-archive "the archive holds more than the swarm directory; nothing was changed"
[[ -d "$stage/swarm/raft" && -d "$stage/swarm/certificates" ]] || fail bad-archive "the archive holds no swarm state (swarm/raft, swarm/certificates); nothing was changed"
[[ -z "$(find "$stage/swarm" ! -type f ! -type d -print -quit)" ]] || fail bad-archive "the archive holds links or special files, which a swarm directory never does; nothing was changed"

say "stopping the engine"
stopped=1
systemctl stop docker || fail stop-failed "systemctl stop docker failed"
changed=1
# At most one previous swarm directory: the current one (if it holds anything) replaces the one an
# earlier restore kept; directories earlier versions of this script left (swarm.before-restore.*) go.
previous=none
previous_from=none
if [[ -d "$swarm_dir" && -n "$(ls -A "$swarm_dir")" ]]; then
	rm -rf "$previous_dir"
	mv "$swarm_dir" "$previous_dir"
	previous=$previous_dir
	previous_from=this
else
	rm -rf "$swarm_dir"
	if [[ -d "$previous_dir" ]]; then
		previous=$previous_dir
		previous_from=earlier
	fi
fi
[[ ! -d "$previous_dir" ]] || chmod 700 "$previous_dir"
removed_old=0
for old in "$swarm_dir".before-restore.*; do
	[[ -e "$old" ]] || continue
	rm -rf "$old"
	removed_old=$((removed_old + 1))
	say "removed $old (kept by an earlier version; only $previous_dir is kept now)"
done
mv "$stage/swarm" "$swarm_dir"
[[ $previous == none ]] || say "the previous swarm state is kept in $previous ($previous_from restore; replaced at the next restore)"
remove_stale_vxlan
say "starting the engine"
systemctl start docker >/dev/null || fail start-failed "systemctl start docker failed"
stopped=0

state=
for ((i = 0; i < wait_timeout; i++)); do
	state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
	[[ "$state" == active ]] && break
	[[ "$state" == locked ]] && unlock_if_locked
	sleep 1
done
[[ "$state" == active ]] || fail start-failed "the engine did not come back in the swarm within ${wait_timeout}s (state: ${state:-no answer})"

if [[ $was_locked == 1 ]]; then
	say "turning autolock off for the re-initialisation (Docker cannot force a new cluster from an autolocked swarm state)"
	wait_manager || fail locked "the restored swarm is autolocked and this node alone has no quorum in it (a backup of several managers): Docker cannot re-initialise it (--force-new-cluster starts without the unlock key); the node is left unlocked with the restored state; bring back managers of that swarm for a quorum"
	docker swarm update --autolock=false >/dev/null || fail locked "docker swarm update --autolock=false failed on the restored swarm"
	autolock_off=1
fi
say "docker swarm init --force-new-cluster"
docker swarm init --force-new-cluster --advertise-addr "$ADVERTISE_ADDR" >/dev/null || fail init-failed "docker swarm init --force-new-cluster failed"
wait_manager || fail init-failed "no swarm leader ${wait_timeout}s after --force-new-cluster"

# After --force-new-cluster on a running engine its network agent is left half set up (moby#36860):
# every task placed here is rejected with "cannot create a swarm scoped network when swarm is not
# active" until the engine restarts. One restart, then the same checks again.
# Tasks placed here before that restart leave their overlay devices behind (the same "file exists"
# for the next task on their network): stop, remove them, start.
say "restarting the engine once more (network agent after --force-new-cluster)"
stopped=1
systemctl stop docker >/dev/null || fail stop-failed "systemctl stop docker failed after --force-new-cluster"
remove_stale_vxlan
systemctl start docker >/dev/null || fail start-failed "systemctl start docker failed after --force-new-cluster"
stopped=0
wait_manager || fail start-failed "the engine did not come back as the swarm's manager ${wait_timeout}s after its restart (state: ${state:-no answer})"
node_id=$(docker info --format '{{.Swarm.NodeID}}')
cluster_id=$(docker info --format '{{.Swarm.Cluster.ID}}')
echo "DCCN_RESULT changed=1 previous=$previous previous_from=$previous_from removed_old=$removed_old bytes=$bytes sha256=$sha node_id=$node_id cluster_id=$cluster_id autolock_turned_off=$autolock_off" || true
