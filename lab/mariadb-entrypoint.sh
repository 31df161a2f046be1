#!/bin/bash
# docker-entrypoint.sh of dccn-lab/mariadb:10, after the official mariadb/mysql images:
# on the first start (no system tables in /var/lib/mysql) it initialises the data directory
# from MARIADB_* or MYSQL_* variables (ROOT_PASSWORD, ALLOW_EMPTY_ROOT_PASSWORD,
# RANDOM_ROOT_PASSWORD, ROOT_HOST, DATABASE, USER, PASSWORD; each also as *_FILE, for
# Docker secrets) and runs /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz in name order.
set -euo pipefail

log() { printf '%s [Entrypoint]: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$*"; }
die() {
	log "error: $*" >&2
	exit 1
}

# env_value NAME: MARIADB_NAME, else MYSQL_NAME, each either direct or read from NAME_FILE
env_value() {
	local n prefix var file
	n=$1
	for prefix in MARIADB_ MYSQL_; do
		var="${prefix}${n}"
		file="${var}_FILE"
		if [[ -n "${!var:-}" && -n "${!file:-}" ]]; then
			die "both $var and $file are set (but are exclusive)"
		fi
		if [[ -n "${!var:-}" ]]; then
			printf '%s' "${!var}"
			return 0
		fi
		if [[ -n "${!file:-}" ]]; then
			cat "${!file}"
			return 0
		fi
	done
	return 0
}

# SQL string literal contents: escape backslashes and single quotes
sql_escape() {
	local s=${1//\\/\\\\}
	printf '%s' "${s//\'/\\\'}"
}

if [[ "${1:0:1}" == "-" ]]; then
	set -- mariadbd "$@"
fi

if [[ "$1" == mariadbd || "$1" == mysqld ]] && [[ "$(id -u)" == 0 ]]; then
	datadir=/var/lib/mysql
	socket=/run/mysqld/mysqld.sock
	mkdir -p /run/mysqld "$datadir"
	chown mysql:mysql /run/mysqld
	find "$datadir" \! -user mysql -exec chown mysql:mysql '{}' +

	if [[ ! -d "$datadir/mysql" ]]; then
		root_password=$(env_value ROOT_PASSWORD)
		allow_empty=$(env_value ALLOW_EMPTY_ROOT_PASSWORD)
		random_root=$(env_value RANDOM_ROOT_PASSWORD)
		root_host=$(env_value ROOT_HOST)
		root_host=${root_host:-%}
		database=$(env_value DATABASE)
		user=$(env_value USER)
		password=$(env_value PASSWORD)
		if [[ -z "$root_password" && -z "$allow_empty" && -z "$random_root" ]]; then
			die "database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD (or the MYSQL_ equivalents)"
		fi
		if [[ -n "$random_root" ]]; then
			root_password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
			log "GENERATED ROOT PASSWORD: $root_password"
		fi
		if [[ "$user" == root ]]; then
			die "MYSQL_USER=root is not allowed: use MYSQL_ROOT_PASSWORD for the root user"
		fi

		log "initializing database files"
		mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
			--auth-root-authentication-method=normal --skip-name-resolve >/dev/null

		log "starting temporary server"
		"$@" --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" \
			--skip-log-bin >/dev/null 2>&1 &
		tmp_pid=$!
		client=(mariadb --protocol=socket --socket="$socket" -uroot --batch --skip-column-names)
		for _ in $(seq 1 60); do
			if "${client[@]}" -e 'SELECT 1' >/dev/null 2>&1; then break; fi
			kill -0 "$tmp_pid" 2>/dev/null || die "temporary server failed to start"
			sleep 1
		done
		"${client[@]}" -e 'SELECT 1' >/dev/null 2>&1 || die "temporary server did not answer in 60s"

		rp=$(sql_escape "$root_password")
		rh=$(sql_escape "$root_host")
		sql="SET @@SESSION.SQL_LOG_BIN=0;
DELETE FROM mysql.global_priv WHERE User='';
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname, '\\'');
ALTER USER 'root'@'localhost' IDENTIFIED BY '${rp}';"
		if [[ "$root_host" != localhost ]]; then
			sql+="
CREATE USER 'root'@'${rh}' IDENTIFIED BY '${rp}';
GRANT ALL ON *.* TO 'root'@'${rh}' WITH GRANT OPTION;"
		fi
		if [[ -n "$database" ]]; then
			log "creating database ${database}"
			sql+="
CREATE DATABASE IF NOT EXISTS \`${database//\`/\`\`}\`;"
		fi
		if [[ -n "$user" && -n "$password" ]]; then
			log "creating user ${user}"
			sql+="
CREATE USER '$(sql_escape "$user")'@'%' IDENTIFIED BY '$(sql_escape "$password")';"
			if [[ -n "$database" ]]; then
				sql+="
GRANT ALL ON \`${database//\`/\`\`}\`.* TO '$(sql_escape "$user")'@'%';"
			fi
		fi
		sql+="
FLUSH PRIVILEGES;"
		"${client[@]}" <<<"$sql"

		# from here on root needs its password: keep it out of the process list
		cnf=$(mktemp /run/mysqld/init.XXXXXX.cnf)
		pw=${root_password//\\/\\\\}
		printf '[client]\npassword="%s"\n' "${pw//\"/\\\"}" >"$cnf"
		client=(mariadb --defaults-extra-file="$cnf" --protocol=socket --socket="$socket" -uroot)
		if [[ -n "$database" ]]; then client+=("$database"); fi
		shopt -s nullglob
		for f in /docker-entrypoint-initdb.d/*; do
			case "$f" in
			*.sh)
				log "running $f"
				# shellcheck source=/dev/null
				. "$f"
				;;
			*.sql)
				log "running $f"
				"${client[@]}" <"$f"
				;;
			*.sql.gz)
				log "running $f"
				gunzip -c "$f" | "${client[@]}"
				;;
			*) log "ignoring $f" ;;
			esac
		done
		shopt -u nullglob

		log "stopping temporary server"
		mariadb --defaults-extra-file="$cnf" --protocol=socket --socket="$socket" -uroot -e 'SHUTDOWN' ||
			kill -TERM "$tmp_pid"
		rm -f "$cnf"
		wait "$tmp_pid" || true
		log "MariaDB init process done. Ready for start up."
	fi
	exec setpriv --reuid=mysql --regid=mysql --init-groups "$@"
fi

exec "$@"
