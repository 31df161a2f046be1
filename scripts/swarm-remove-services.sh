#!/usr/bin/env bash
# swarm-remove-services.sh - the emergency shutdown's "remove running stacks and services" (DCCN
# document 4.5 step 3), on a manager: `docker stack rm` for each stack named (and every other stack
# namespace found), then `docker service rm` for any service left; waits until no service and no
# stack network, config or secret is left.
#
# Environment:
#   STACKS        space-separated stack names to remove first (others found are removed as well)
#   WAIT_TIMEOUT  seconds to wait until everything is gone, default 120
#
# Output, last line on stdout: DCCN_RESULT changed=<0|1> stacks=<n> services=<n>
# On failure (exit 1): DCCN_RESULT changed=<0|1> error=<not-a-manager|timeout>
set -euo pipefail

wait_timeout=${WAIT_TIMEOUT:-120}
ns_label=com.docker.stack.namespace

docker node ls -q >/dev/null 2>&1 || { echo "swarm-remove-services: not a manager with a quorum" >&2; echo "DCCN_RESULT changed=0 error=not-a-manager"; exit 1; }

namespaces() {
	{
		docker service ls --format "{{.Label \"$ns_label\"}}"
		docker network ls --filter "label=$ns_label" --format "{{.Label \"$ns_label\"}}"
		docker config ls --filter "label=$ns_label" --format "{{.Label \"$ns_label\"}}" 2>/dev/null || true
		docker secret ls --filter "label=$ns_label" --format "{{.Label \"$ns_label\"}}" 2>/dev/null || true
	} | grep -v '^$' | sort -u || true
}

read -r -a named <<<"${STACKS:-}"
mapfile -t found < <(namespaces)
stacks=0
declare -A seen=()
for s in "${named[@]}" "${found[@]}"; do
	[[ -n "$s" && -z "${seen[$s]:-}" ]] || continue
	seen[$s]=1
	if [[ " ${found[*]} " == *" $s "* ]]; then
		echo "swarm-remove-services: docker stack rm $s" >&2
		docker stack rm "$s" >/dev/null
		stacks=$((stacks + 1))
	fi
done
mapfile -t services < <(docker service ls -q)
if ((${#services[@]})); then
	echo "swarm-remove-services: docker service rm ${#services[@]} service(s)" >&2
	docker service rm "${services[@]}" >/dev/null
fi
changed=0
((stacks + ${#services[@]} > 0)) && changed=1

for ((i = 0; i < wait_timeout; i += 2)); do
	if [[ -z "$(docker service ls -q)" && -z "$(namespaces)" ]]; then
		echo "DCCN_RESULT changed=$changed stacks=$stacks services=${#services[@]}"
		exit 0
	fi
	sleep 2
done
echo "swarm-remove-services: services or stack objects left after ${wait_timeout}s: $(namespaces | tr '\n' ' ')" >&2
echo "DCCN_RESULT changed=$changed error=timeout"
exit 1
