#!/usr/bin/env bash
# baseline-manual.sh MODE --key FILE --known-hosts FILE [--user USER] --node SPEC... [--stack NAME=DIR]...
#
# The alternative a DCCN administrator has today, for the lab benchmarks (bench/lab.ts): the
# document's manual procedure (chapters 4.1-4.2; the swarm tutorial's README), one step after
# another with the Docker CLI over SSH, reaching the end state `pulumi up --stack dev` reaches.
#
#   up     with --daemon-json (and --engine-package): first, on each node one after another, the
#          engine installed with apt-get when there is no dockerd (the document's 4.2.1 kickstart
#          step, from the node's configured apt sources), daemon.json written, the engine enabled
#          and restarted; then
#          docker swarm init on the first manager; join-token; each other manager joins, then each
#          worker; docker node update --label-add (and --availability) per node; docker stack deploy
#          per --stack, waiting until every service runs all its replicas (`docker stack services`,
#          the document's "check the stack started properly"); a final docker node ls
#   noop   the idempotent part, re-run on a cluster already in that state: check each node is in
#          the swarm (joining it if not), re-apply labels and availability, re-deploy each --stack
#   stage  copy each --stack DIR to the first manager (/tmp/dccn-baseline/NAME), where an
#          administrator has it on the shared storage (between runs; not timed)
#   node-update --target NAME [--what labels|availability]
#          docker node update --label-add (labels) or --availability (availability) for node NAME
#          only, from its --node SPEC: the label change and the drain of the lab benchmarks
#   reset  docker swarm leave --force on every node (between runs; not timed)
#   deploy docker stack deploy per --stack (staged before), waiting as in `up`
#   rm     docker stack rm per --stack, waiting until its services and networks are gone
#   update-image --service NAME --image REF [--update KEY=VALUE]...
#          the rolling image update: docker service update --image REF --update-KEY VALUE ... NAME
#          on the first manager, as the document updates a service; the CLI waits (no --detach)
#          until the update converged and its monitor period passed. Prints `start EPOCH` just
#          before the command (the node's connection already open) and `end EPOCH` after it.
#
# A stack DIR (bench/baseline-stacks.ts writes it) holds docker-compose.baseline.yml, the files it
# names, .baseline.env (its ${VAR} values and DCCN_RESOLVE_IMAGE for --resolve-image) and maybe
# .baseline-secrets/NAME: the value of each external secret the stack needs, made with
# `docker secret create NAME FILE` before the deploy when the swarm does not have it yet.
#
# SPEC is NAME,ADDRESS,ROLE,AVAILABILITY[,KEY=VALUE...] (role manager|worker, availability
# active|drain|pause; label values without commas), e.g. vm2,172.28.213.12,worker,active,os=linux.
# Nodes are reached as `ssh -i KEY -o UserKnownHostsFile=KNOWN_HOSTS -o StrictHostKeyChecking=yes
# USER@ADDRESS`. Each node's SSH connection is opened once and reused (ControlMaster), as an
# administrator keeps a shell open on each node: the baseline pays no per-command connection cost.
set -euo pipefail

usage() {
  sed -n '2p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
mode=$1
shift
case "$mode" in up | noop | stage | reset | deploy | rm | update-image | node-update) ;; *) usage ;; esac

key="" known_hosts="" user=root
specs=()
stacks=()
service="" image="" target="" what="" daemon_json="" engine_package=docker.io
update_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key=${2:?}; shift 2 ;;
    --known-hosts) known_hosts=${2:?}; shift 2 ;;
    --user) user=${2:?}; shift 2 ;;
    --node) specs+=("${2:?}"); shift 2 ;;
    --stack) stacks+=("${2:?}"); shift 2 ;;
    --service) service=${2:?}; shift 2 ;;
    --image) image=${2:?}; shift 2 ;;
    --target) target=${2:?}; shift 2 ;;
    --what) what=${2:?}; shift 2 ;;
    --daemon-json) daemon_json=${2:?}; shift 2 ;;
    --engine-package) engine_package=${2:?}; shift 2 ;;
    --update)
      # KEY=VALUE -> --update-KEY VALUE (parallelism, delay, order, monitor, failure-action, max-failure-ratio)
      case "${2:?}" in
        parallelism=* | delay=* | order=* | monitor=* | failure-action=* | max-failure-ratio=*)
          update_flags+=("--update-${2%%=*}" "${2#*=}") ;;
        *) echo "bad --update $2: want KEY=VALUE, KEY one of parallelism delay order monitor failure-action max-failure-ratio" >&2; exit 2 ;;
      esac
      shift 2 ;;
    *) usage ;;
  esac
done
if [ -z "$key" ] || [ -z "$known_hosts" ] || [ ${#specs[@]} -eq 0 ]; then usage; fi

names=() addrs=() roles=() avails=() labels=()
for spec in "${specs[@]}"; do
  IFS=, read -r -a f <<<"$spec"
  [ ${#f[@]} -ge 4 ] || { echo "bad --node $spec: want NAME,ADDRESS,ROLE,AVAILABILITY[,KEY=VALUE...]" >&2; exit 2; }
  case "${f[2]}" in manager | worker) ;; *) echo "bad role in --node $spec" >&2; exit 2 ;; esac
  names+=("${f[0]}") addrs+=("${f[1]}") roles+=("${f[2]}") avails+=("${f[3]}")
  labels+=("$(printf '%s\n' "${f[@]:4}")")
done

boot=-1
for i in "${!names[@]}"; do
  if [ "${roles[$i]}" = manager ]; then boot=$i; break; fi
done
[ "$boot" -ge 0 ] || { echo "no --node has role manager" >&2; exit 2; }
boot_addr=${addrs[$boot]}

ctl=$(mktemp -d)
cleanup() {
  for a in "${addrs[@]}"; do
    ssh -o ControlPath="$ctl/%C" -O exit "$user@$a" >/dev/null 2>&1 || true
  done
  rm -rf "$ctl"
}
trap cleanup EXIT

# on_stdin ADDRESS COMMAND...: run a command on a node (its shell interprets the command line),
# feeding it this script's stdin; `on` gives it no stdin.
on_stdin() {
  local addr=$1
  shift
  ssh -i "$key" -o UserKnownHostsFile="$known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
    -o ConnectTimeout=10 -o LogLevel=ERROR \
    -o ControlMaster=auto -o ControlPath="$ctl/%C" -o ControlPersist=300 \
    "$user@$addr" "$@"
}
on() { on_stdin "$@" </dev/null; }

say() { printf '[baseline %s] %s\n' "$(date +%T.%N | cut -c1-12)" "$*"; }

# label_node I: docker node update --label-add for node I's labels (one command per node).
label_node() {
  local i=$1 args="" kv
  while IFS= read -r kv; do
    [ -n "$kv" ] && args+=" --label-add $(printf '%q' "$kv")"
  done <<<"${labels[$i]}"
  if [ -n "$args" ] && [ "$what" != availability ]; then
    say "label ${names[$i]}:${args}"
    on "$boot_addr" "docker node update$args $(printf '%q' "${names[$i]}")" >/dev/null
  fi
  if [ "$what" = availability ] || { [ "${avails[$i]}" != active ] && [ "$what" != labels ]; }; then
    say "availability ${names[$i]}: ${avails[$i]}"
    on "$boot_addr" "docker node update --availability ${avails[$i]} ${names[$i]}" >/dev/null
  fi
}

# join_node I: docker swarm join for node I with the token of its role (4.2.2).
join_node() {
  local i=$1 token
  token=$(on "$boot_addr" "docker swarm join-token -q ${roles[$i]}")
  say "join ${names[$i]} as ${roles[$i]}"
  on "${addrs[$i]}" "docker swarm join --token $token --advertise-addr ${addrs[$i]} $boot_addr:2377" >/dev/null
}

STAGE=/tmp/dccn-baseline

deploy_stacks() {
  local s name
  for s in "${stacks[@]+"${stacks[@]}"}"; do
    name=${s%%=*}
    on "$boot_addr" "cd $STAGE/$(printf '%q' "$name") && if [ -d .baseline-secrets ]; then \
      for f in .baseline-secrets/*; do docker secret inspect \"\${f##*/}\" >/dev/null 2>&1 || \
        { echo \"docker secret create \${f##*/}\" >&2; docker secret create \"\${f##*/}\" \"\$f\" >/dev/null; }; done; fi"
    say "docker stack deploy $name"
    on "$boot_addr" "cd $STAGE/$(printf '%q' "$name") && set -a && . ./.baseline.env && set +a && \
      docker stack deploy -c docker-compose.baseline.yml --resolve-image \"\$DCCN_RESOLVE_IMAGE\" --with-registry-auth $(printf '%q' "$name")" >/dev/null
  done
  for s in "${stacks[@]+"${stacks[@]}"}"; do wait_stack "${s%%=*}"; done
}

# wait_stack NAME: until every service of the stack runs all its replicas (n/n), at most 300 s.
wait_stack() {
  local name=$1 deadline=$((SECONDS + 300)) replicas
  while :; do
    replicas=$(on "$boot_addr" "docker stack services --format '{{.Replicas}}' $(printf '%q' "$name")")
    if [ -n "$replicas" ] && ! grep -Ev '^([0-9]+)/\1( |$)' <<<"$replicas" >/dev/null; then
      say "stack $name converged: $(tr '\n' ' ' <<<"$replicas")"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "stack $name did not converge in 300 s: $(tr '\n' ' ' <<<"$replicas")" >&2
      exit 1
    fi
    sleep 0.5
  done
}

# provision_node I: the engine on node I (4.2.1), as the kickstart post-install step does it by hand.
provision_node() {
  local i=$1
  say "engine on ${names[$i]}: apt-get install $engine_package (unless installed), daemon.json, restart"
  on_stdin "${addrs[$i]}" "set -e; if ! command -v dockerd >/dev/null 2>&1; then export DEBIAN_FRONTEND=noninteractive; \
    apt-get update -q && apt-get install -y -q --no-install-recommends $(printf '%q' "$engine_package"); fi; \
    mkdir -p /etc/docker && cat >/etc/docker/daemon.json && systemctl enable docker && systemctl restart docker" <"$daemon_json"
}

case "$mode" in
  up)
    if [ -n "$daemon_json" ]; then
      for i in "${!names[@]}"; do provision_node "$i"; done
    fi
    # 4.1: initialise the cluster on the bootstrap manager.
    say "swarm init on ${names[$boot]}"
    on "$boot_addr" "docker swarm init --advertise-addr $boot_addr" >/dev/null
    # 4.2.2: other managers first, one after another, then the workers.
    for role in manager worker; do
      token=""
      for i in "${!names[@]}"; do
        if [ "$i" -eq "$boot" ] || [ "${roles[$i]}" != "$role" ]; then continue; fi
        if [ -z "$token" ]; then
          say "join-token $role"
          token=$(on "$boot_addr" "docker swarm join-token -q $role")
        fi
        say "join ${names[$i]} as $role"
        on "${addrs[$i]}" "docker swarm join --token $token --advertise-addr ${addrs[$i]} $boot_addr:2377" >/dev/null
      done
    done
    # 4.2.3: node labels (and availability).
    for i in "${!names[@]}"; do label_node "$i"; done
    deploy_stacks
    on "$boot_addr" "docker node ls"
    ;;
  noop)
    for i in "${!names[@]}"; do
      state=$(on "${addrs[$i]}" "docker info --format '{{.Swarm.LocalNodeState}}'")
      say "${names[$i]}: swarm state $state"
      if [ "$state" != active ]; then
        if [ "$i" -eq "$boot" ]; then
          echo "bootstrap manager ${names[$boot]} is not in a swarm: run \`$0 up\` first" >&2
          exit 1
        fi
        join_node "$i"
      fi
    done
    for i in "${!names[@]}"; do label_node "$i"; done
    deploy_stacks
    ;;
  stage)
    for s in "${stacks[@]+"${stacks[@]}"}"; do
      name=${s%%=*} dir=${s#*=}
      [ -f "$dir/docker-compose.baseline.yml" ] || { echo "$dir/docker-compose.baseline.yml missing" >&2; exit 1; }
      say "stage $name on ${names[$boot]}"
      tar -C "$dir" -cf - . | on_stdin "$boot_addr" "rm -rf $STAGE/$(printf '%q' "$name") && mkdir -p $STAGE/$(printf '%q' "$name") && tar -C $STAGE/$(printf '%q' "$name") -xf -"
    done
    ;;
  deploy)
    deploy_stacks
    ;;
  rm)
    for s in "${stacks[@]+"${stacks[@]}"}"; do
      name=${s%%=*}
      say "docker stack rm $name"
      on "$boot_addr" "docker stack rm $(printf '%q' "$name")" >/dev/null
      deadline=$((SECONDS + 120))
      while [ -n "$(on "$boot_addr" "docker service ls -q --filter label=com.docker.stack.namespace=$(printf '%q' "$name"); \
          docker network ls -q --filter label=com.docker.stack.namespace=$(printf '%q' "$name")")" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "stack $name still has services or networks after 120 s" >&2; exit 1; }
        sleep 0.5
      done
    done
    ;;
  update-image)
    if [ -z "$service" ] || [ -z "$image" ]; then
      echo "update-image needs --service NAME and --image REF" >&2
      exit 2
    fi
    on "$boot_addr" true
    cmd="docker service update --image $(printf '%q' "$image")"
    for f in "${update_flags[@]+"${update_flags[@]}"}"; do cmd+=" $(printf '%q' "$f")"; done
    cmd+=" $(printf '%q' "$service")"
    echo "start $(date +%s.%N)"
    on "$boot_addr" "$cmd"
    echo "end $(date +%s.%N)"
    say "$cmd"
    ;;
  node-update)
    found=""
    for i in "${!names[@]}"; do
      if [ "${names[$i]}" = "$target" ]; then
        found=1
        label_node "$i"
      fi
    done
    [ -n "$found" ] || { echo "node-update: no --node named ${target:-(none; --target NAME)}" >&2; exit 2; }
    ;;
  reset)
    pids=()
    for i in "${!names[@]}"; do
      say "swarm leave --force on ${names[$i]}"
      on "${addrs[$i]}" "docker swarm leave --force >/dev/null 2>&1 || true" &
      pids+=("$!")
    done
    for p in "${pids[@]}"; do wait "$p"; done
    for i in "${!names[@]}"; do
      state=$(on "${addrs[$i]}" "docker info --format '{{.Swarm.LocalNodeState}}'")
      [ "$state" = inactive ] || { echo "${names[$i]} still in a swarm ($state)" >&2; exit 1; }
    done
    ;;
esac
