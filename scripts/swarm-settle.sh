#!/usr/bin/env bash
# swarm-settle.sh - run on a manager whose engine was stopped and started (swarm backup, restore,
# --force-new-cluster): wait until the swarm's tasks on this node are really back.
#
#  1. A stopping engine removes its task containers, but the swarm goes on holding those tasks as
#     running until the node's agent reports them failed ("No such container"), a minute or more
#     later, and only then replaces them. Wait until no task here is Running without a container.
#  2. A task started in that window may come up without its host-mode published ports (seen with
#     the registry after a restore: healthy, `5000/tcp` only, nothing listening on the node). Wait
#     until the tasks on this node of every service with host-mode ports run with their ports; one
#     that runs without its binding is redeployed once (`docker service update --force`).
#
# Parameters (environment): SETTLE_TIMEOUT, seconds for both waits together (default 180).
# It does not fail for what it finds: the last line names what is left, for the caller to report:
#   DCCN_RESULT changed=0|1 orphaned=TASK,...|none unpublished=SERVICE,...|none redeployed=SERVICE,...|none
set -uo pipefail

timeout=${SETTLE_TIMEOUT:-180}
deadline=$((SECONDS + timeout))

# "ID NAME STATE ..." of the tasks meant to run on this node; fails when the swarm cannot be asked.
tasks_here() {
	docker node ps self --no-trunc --filter desired-state=running --format '{{.ID}} {{.Name}} {{.CurrentState}}'
}

# The container of a task (also a stopped one), or nothing.
container_of() {
	docker ps -aq --filter "label=com.docker.swarm.task.id=$1"
}

# 1. Orphans.
orphans="(the-tasks-of-this-node-could-not-be-listed)"
while :; do
	if tasks=$(tasks_here 2>/dev/null); then
		orphans=""
		while read -r id name state _; do
			[[ -n "$id" && "$state" == Running && -z "$(container_of "$id")" ]] && orphans+="${orphans:+,}$name"
		done <<<"$tasks"
		[[ -z "$orphans" ]] && break
	fi
	((SECONDS < deadline)) || break
	sleep 2
done

# 2. Services with host-mode ports: their current tasks (desired Ready, in a restart delay, or
#    Running) on this node running with their ports bound, and none still waiting for a node (a
#    Pending one, which no node can take now, is not waited for; tasks on other nodes neither).
host=$(docker info --format '{{.Name}}' 2>/dev/null || hostname)
unpublished=""
redeployed=""
if [[ -z "$orphans" ]]; then
	while :; do
		unpublished=""
		services=$(docker service ls -q 2>/dev/null) || services=""
		for service in $services; do
			ports=$(docker service inspect --format '{{range .Endpoint.Ports}}{{if eq .PublishMode "host"}}{{.PublishedPort}} {{end}}{{end}}' "$service" 2>/dev/null) || continue
			[[ -n "$ports" ]] || continue
			name=$(docker service inspect --format '{{.Spec.Name}}' "$service" 2>/dev/null || echo "$service")
			waiting=0
			while IFS='|' read -r id node desired state; do
				[[ -n "$id" && ("$desired" == Running || "$desired" == Ready) ]] || continue
				state=${state%% *}
				if [[ -z "$node" ]]; then
					[[ "$state" == Pending ]] || waiting=1
					continue
				fi
				[[ "$node" == "$host" ]] || continue
				container=$(container_of "$id")
				if [[ "$desired" != Running || ("$state" != Running && "$state" != Starting) || -z "$container" ]]; then
					waiting=1
					continue
				fi
				[[ -n "$(docker port "$container" 2>/dev/null)" ]] && { [[ "$state" == Running ]] || waiting=1; continue; }
				waiting=1
				if [[ ",$redeployed," != *",$name,"* ]]; then
					echo "swarm-settle: a task of $name runs on $host without its published port(s) ${ports% }: redeploying it (docker service update --force)" >&2
					docker service update --force --detach "$service" >/dev/null && redeployed+="${redeployed:+,}$name"
				fi
			done < <(docker service ps "$service" --no-trunc --format '{{.ID}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}' 2>/dev/null)
			((waiting)) && unpublished+="${unpublished:+,}$name"
		done
		[[ -z "$unpublished" ]] && break
		((SECONDS < deadline)) || break
		sleep 2
	done
fi

changed=0
[[ -n "$redeployed" ]] && changed=1
echo "DCCN_RESULT changed=$changed orphaned=${orphans:-none} unpublished=${unpublished:-none} redeployed=${redeployed:-none}"
