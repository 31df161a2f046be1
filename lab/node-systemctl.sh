#!/bin/bash
# systemctl of a dccn-lab node (installed as /usr/local/bin/systemctl).
#
# The nodes run no systemd: /usr/local/sbin/lab-init (node-init.sh) is PID 1. This shim gives
# provisioning scripts the systemctl verbs they use on a bare-metal host for the docker unit
# (start, stop, restart, reload, is-active, is-enabled, status, enable, disable,
# daemon-reload), plus ssh/sshd and no-ops for containerd and docker.socket.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

state=/run/lab-init
pidfile=/run/docker.pid
dockerlog=/var/log/dockerd.log
mkdir -p "$state"

docker_pid() {
	local pid
	[[ -s "$pidfile" ]] || return 1
	pid=$(<"$pidfile")
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
	echo "$pid"
}

docker_start() {
	if docker_pid >/dev/null; then return 0; fi
	rm -f "$pidfile"
	date -u "+-- %Y-%m-%dT%H:%M:%SZ starting dockerd" >>"$dockerlog"
	# the lock descriptor (9) must not live on in dockerd
	setsid dockerd </dev/null >>"$dockerlog" 2>&1 9>&- &
	local pid=$!
	for _ in $(seq 1 240); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "Job for docker.service failed: dockerd exited. See /var/log/dockerd.log:" >&2
			tail -n 15 "$dockerlog" >&2
			return 1
		fi
		if docker_pid >/dev/null && docker version >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.25
	done
	echo "Job for docker.service timed out: dockerd did not answer in 60s" >&2
	return 1
}

docker_stop() {
	local pid
	rm -f "$state/docker.wanted"
	pid=$(docker_pid) || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 240); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.25
	done
	kill -KILL "$pid" 2>/dev/null
	return 0
}

sshd_pid() {
	local pid
	[[ -s /run/sshd.pid ]] || return 1
	pid=$(</run/sshd.pid)
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

# docker UNIT VERB: verbs with the lock held, so lab-init's watchdog never races a restart
docker_verb() {
	local verb=$1
	exec 9>"$state/docker.lock"
	case "$verb" in
	start)
		flock 9
		touch "$state/docker.wanted"
		docker_start
		;;
	stop)
		flock 9
		docker_stop
		;;
	restart | reload | reload-or-restart | try-restart)
		flock 9
		docker_stop
		touch "$state/docker.wanted"
		docker_start
		;;
	lab-watchdog)
		flock -n 9 || return 0
		[[ -e "$state/docker.wanted" ]] || return 0
		docker_pid >/dev/null && return 0
		# like RestartSec: at most one attempt every 10 s
		if [[ -e "$state/docker.last-restart" ]] &&
			(($(date +%s) - $(stat -c %Y "$state/docker.last-restart") < 10)); then
			return 0
		fi
		touch "$state/docker.last-restart"
		echo "lab-init: dockerd is not running; starting it again" >&2
		docker_start
		;;
	is-active)
		if docker_pid >/dev/null; then
			echo active
		else
			echo inactive
			return 3
		fi
		;;
	is-enabled)
		if [[ -e "$state/docker.enabled" ]]; then echo enabled; else
			echo disabled
			return 1
		fi
		;;
	status)
		local pid
		if pid=$(docker_pid); then
			printf '● docker.service - Docker Application Container Engine\n     Active: active (running)\n   Main PID: %s (dockerd)\n' "$pid"
		else
			printf '○ docker.service - Docker Application Container Engine\n     Active: inactive (dead)\n'
			return 3
		fi
		;;
	enable)
		touch "$state/docker.enabled"
		if ((now)); then docker_verb start; fi
		;;
	disable)
		rm -f "$state/docker.enabled"
		if ((now)); then docker_verb stop; fi
		;;
	*)
		echo "systemctl (dccn-lab): unsupported verb '$verb' for docker" >&2
		return 1
		;;
	esac
}

ssh_verb() {
	local verb=$1 pid
	case "$verb" in
	start | enable | daemon-reload) return 0 ;;
	restart | stop | try-restart)
		# lab-init starts sshd again within 2 s
		if pid=$(sshd_pid); then kill -TERM "$pid"; fi
		;;
	reload | reload-or-restart)
		if pid=$(sshd_pid); then kill -HUP "$pid"; fi
		;;
	is-active | status)
		if sshd_pid >/dev/null; then echo active; else
			echo inactive
			return 3
		fi
		;;
	is-enabled) echo enabled ;;
	*)
		echo "systemctl (dccn-lab): unsupported verb '$verb' for ssh" >&2
		return 1
		;;
	esac
}

now=0
verb=
units=()
for arg in "$@"; do
	case "$arg" in
	--now) now=1 ;;
	--lab-watchdog) verb=lab-watchdog ;;
	-q | --quiet | --no-block | --no-pager | --system | -l | --full) ;;
	-*) ;;
	*)
		if [[ -z "$verb" ]]; then verb=$arg; else units+=("$arg"); fi
		;;
	esac
done

case "$verb" in
'') echo "usage: systemctl VERB [UNIT...] (dccn-lab shim: docker, ssh, containerd)" >&2; exit 1 ;;
daemon-reload | daemon-reexec | reset-failed) exit 0 ;;
esac

rc=0
for unit in "${units[@]}"; do
	case "${unit%.service}" in
	docker) docker_verb "$verb" || rc=$? ;;
	ssh | sshd) ssh_verb "$verb" || rc=$? ;;
	containerd | docker.socket)
		case "$verb" in
		is-active | is-enabled) echo active ;;
		esac
		;;
	*)
		echo "systemctl (dccn-lab): unit $unit is not managed on lab nodes" >&2
		rc=5
		;;
	esac
done
exit "$rc"
