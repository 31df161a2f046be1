#!/usr/bin/env bash
# engine-power.sh - stop or start a node for the emergency shutdown and reboot (DCCN document 4.5,
# 4.5.1).
#
# Environment:
#   ACTION        stop      stop the docker engine (its containers stop with it); the machine stays up
#                 poweroff  power the machine off (systemctl poweroff, a second after this returns)
#                 start     start the docker engine and wait until it answers
#   WAIT_TIMEOUT  seconds to wait for the engine on start, default 90
#
# Output, last line on stdout: DCCN_RESULT changed=<0|1> engine=<active|inactive|poweroff>
# On failure (exit 1): DCCN_RESULT changed=<0|1> error=<bad-action|stop-failed|start-failed>
set -euo pipefail

wait_timeout=${WAIT_TIMEOUT:-90}

active() { docker info >/dev/null 2>&1; }

case "${ACTION:-}" in
stop)
	if ! systemctl is-active docker >/dev/null 2>&1 && ! active; then
		echo "DCCN_RESULT changed=0 engine=inactive"
		exit 0
	fi
	systemctl stop docker || { echo "DCCN_RESULT changed=0 error=stop-failed"; exit 1; }
	echo "DCCN_RESULT changed=1 engine=inactive"
	;;
poweroff)
	# Detached, so that this SSH session ends cleanly before the machine goes down.
	nohup sh -c 'sleep 1; systemctl poweroff' >/dev/null 2>&1 &
	echo "DCCN_RESULT changed=1 engine=poweroff"
	;;
start)
	if active; then
		echo "DCCN_RESULT changed=0 engine=active"
		exit 0
	fi
	systemctl start docker >/dev/null || { echo "DCCN_RESULT changed=1 error=start-failed"; exit 1; }
	for ((i = 0; i < wait_timeout; i++)); do
		if active; then
			echo "DCCN_RESULT changed=1 engine=active"
			exit 0
		fi
		sleep 1
	done
	echo "engine-power: the engine did not answer within ${wait_timeout}s" >&2
	echo "DCCN_RESULT changed=1 error=start-failed"
	exit 1
	;;
*)
	echo "engine-power: ACTION must be stop, poweroff or start, got '${ACTION:-}'" >&2
	echo "DCCN_RESULT changed=0 error=bad-action"
	exit 1
	;;
esac
