#!/usr/bin/env bash
# image-setup.sh IMAGE
#
# Runs inside the build chroot of one lab image (see build-layer.sh), after its Debian
# packages are installed, with the lab's files at /tmp/lab-assets. Turns the installed
# packages into a container image the way the image's official counterpart is laid out.
set -euo pipefail
image=${1:?usage: image-setup.sh IMAGE}
assets=/tmp/lab-assets

case "$image" in
node)
	# A bare-metal-like host: sshd and dockerd started by /usr/local/sbin/lab-init (PID 1),
	# a systemctl that can restart the engine after provisioning rewrote daemon.json.
	install -m 755 "$assets/node-init.sh" /usr/local/sbin/lab-init
	install -m 755 "$assets/node-systemctl.sh" /usr/local/bin/systemctl
	rm -f /etc/ssh/ssh_host_*
	install -d -m 700 /root/.ssh
	usermod -p '*' root
	cat >/etc/ssh/sshd_config.d/10-dccn-lab.conf <<'SSHD'
# dccn-lab node: root logs in with a key, never with a password
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
SSHD
	;;
registry)
	# distribution's registry 2.8 from Debian's docker-registry package, configured like
	# the official registry:2 image (REGISTRY_* variables override the file)
	mkdir -p /etc/docker/registry /var/lib/registry
	cat >/etc/docker/registry/config.yml <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
	ln -sf /usr/bin/docker-registry /bin/registry
	install -m 755 "$assets/registry-entrypoint.sh" /entrypoint.sh
	;;
redis)
	install -m 755 "$assets/redis-entrypoint.sh" /usr/local/bin/docker-entrypoint.sh
	mkdir -p /data
	chown redis:redis /data
	;;
mariadb)
	install -m 755 "$assets/mariadb-entrypoint.sh" /usr/local/bin/docker-entrypoint.sh
	# mariadb-server-core (no init scripts, no perl) does not add the mysql user
	getent group mysql >/dev/null || groupadd --system mysql
	getent passwd mysql >/dev/null ||
		useradd --system --gid mysql --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin mysql
	# the entrypoint initialises the data directory on first start, from the environment
	rm -rf /var/lib/mysql
	mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d /etc/mysql/mariadb.conf.d
	chown mysql:mysql /var/lib/mysql /run/mysqld
	cat >/etc/mysql/mariadb.conf.d/99-dccn-lab.cnf <<'CNF'
# dccn-lab/mariadb: listen on the container's network like the official image
[mysqld]
datadir = /var/lib/mysql
socket = /run/mysqld/mysqld.sock
bind-address = 0.0.0.0
skip-name-resolve
host-cache-size = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci

[client]
socket = /run/mysqld/mysqld.sock
default-character-set = utf8mb4
CNF
	command -v mariadb-install-db >/dev/null
	;;
php-apache)
	install -m 755 "$assets/apache2-foreground.sh" /usr/local/bin/apache2-foreground
	rm -f /var/www/html/index.html
	chown www-data:www-data /var/www/html
	# logs to the container's output, like the official php:apache image
	ln -sfT /dev/stdout /var/log/apache2/access.log
	ln -sfT /dev/stderr /var/log/apache2/error.log
	ln -sfT /dev/stdout /var/log/apache2/other_vhosts_access.log
	;;
busybox)
	# a stand-alone image: only the static busybox and its applets
	ex=/tmp/lab-export
	mkdir -p "$ex/bin" "$ex/etc" "$ex/root" "$ex/tmp" "$ex/home" "$ex/var/spool/mail" "$ex/var/www"
	chmod 1777 "$ex/tmp"
	chmod 700 "$ex/root"
	cp /bin/busybox "$ex/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[[ "$applet" == busybox ]] || ln -s busybox "$ex/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$ex/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$ex/etc/group"
	;;
*)
	echo "image-setup.sh: unknown image $image" >&2
	exit 2
	;;
esac
