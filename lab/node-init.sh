#!/bin/bash
# lab-init: PID 1 of a dccn-lab node (installed as /usr/local/sbin/lab-init).
#
# Starts the services a bare-metal Docker host starts at boot, sshd and dockerd (which reads
# /etc/docker/daemon.json), keeps them running, reaps orphans, and on SIGTERM stops dockerd
# cleanly before the node goes away. dockerd is controlled through /usr/local/bin/systemctl
# (node-systemctl.sh), so `systemctl restart docker` after rewriting daemon.json works.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'lab-init: %s\n' "$*"; }

# state of the previous boot is stale now
rm -rf /run/lab-init
mkdir -p /run/lab-init /run/sshd
rm -f /run/docker.pid /run/sshd.pid /run/docker.sock

# like a first boot: a node gets its own ssh host keys
ssh-keygen -A >/dev/null

sshd_pid=
start_sshd() {
	/usr/sbin/sshd -D -e &
	sshd_pid=$!
}

shutdown() {
	log "stopping"
	systemctl stop docker
	[[ -n "$sshd_pid" ]] && kill -TERM "$sshd_pid" 2>/dev/null
	wait
	exit 0
}
trap shutdown TERM INT

log "starting sshd"
start_sshd
log "starting docker"
systemctl enable docker >/dev/null
systemctl start docker || log "docker did not start: see /var/log/dockerd.log"
log "up"

while :; do
	# waking up every 2 s also reaps orphaned children (bash waits for any child)
	sleep 2 &
	wait $!
	if ! kill -0 "$sshd_pid" 2>/dev/null; then
		log "sshd exited; starting it again"
		start_sshd
	fi
	# Restart=always: start dockerd again if it is enabled but died
	systemctl --lab-watchdog docker
done
