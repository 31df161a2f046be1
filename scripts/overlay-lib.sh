# shellcheck shell=bash
# overlay-lib.sh - a function the swarm scripts share; sent ahead of them (lib/remote-script.ts
# readScript expands the `. .../overlay-lib.sh` line), never run alone.
#
# Overlay VXLAN devices the engine had made but not yet moved into a network's namespace (a task
# placed while the engine stopped, left the swarm or had its network agent half set up) stay in the
# host's namespace. A new or recovered swarm gives its networks the same VNIs, and every task on them
# would then be rejected on this node ("error creating vxlan interface: file exists"), in every later
# run, until the device goes. Run only where no overlay network is in use: the engine stopped, or the
# node out of any swarm.
remove_stale_vxlan() {
	command -v ip >/dev/null 2>&1 || return 0
	local dev
	for dev in $(ip -o link show type vxlan 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep '^vx-' || true); do
		ip link delete "$dev" && echo "removed the stale overlay device $dev" >&2
	done
	return 0
}
