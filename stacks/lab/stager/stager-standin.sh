#!/bin/sh
# stager-standin.sh: the lab's stand-in for the DCCN data-stager images (stager:2.0.0 and
# stager-ui:2.0.0, built from ./Dockerfile and pushed to the lab's registry; the real ones live in
# the DCCN registry). Run as the image's entrypoint it
# serves HTTP with busybox httpd on STANDIN_PORT (3000: the stager, 3080: its UI); run as the CGI
# behind it (STANDIN_CGI=1, set by the entrypoint) it writes the page:
#   stager:    that it runs, that it reaches redis at REDIS_HOST:REDIS_PORT (PING answered with
#              PONG), and that it reads its secret file IRODS_ADMIN_CREDENTIAL (its size, never its
#              content);
#   stager-ui: that it runs and reaches the stager at STAGER_URL (default http://stager4ui:3000/,
#              the alias the stack gives the stager service).
# Each check prints one line `check <name>: ok|FAILED ...`, so a test can read the page.
set -u
role=${STANDIN_ROLE:-stager}
port=${STANDIN_PORT:-3000}

if [ "${STANDIN_CGI:-}" != 1 ]; then
	www=/var/lib/stager-standin/www
	mkdir -p "$www/cgi-bin"
	# busybox httpd runs cgi-bin/index.cgi for a directory without index.html
	printf '#!/bin/sh\nSTANDIN_CGI=1 exec /usr/local/bin/stager-standin\n' >"$www/cgi-bin/index.cgi"
	chmod 755 "$www/cgi-bin/index.cgi"
	echo "stager-standin: $role listening on port $port" >&2
	exec busybox httpd -f -v -p "$port" -h "$www"
fi

printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
echo "dccn-lab $role stand-in: running on $(busybox hostname) (port $port)"
if [ "$role" = stager ]; then
	host=${REDIS_HOST:-}
	rport=${REDIS_PORT:-6379}
	if [ -z "$host" ]; then
		echo "check redis: FAILED (REDIS_HOST is not set)"
	else
		# QUIT: redis closes the connection, so the page does not wait for the time-out
		answer=$(printf 'PING\r\nQUIT\r\n' | busybox timeout 5 busybox nc "$host" "$rport" 2>&1 | tr -d '\r' | head -n 1)
		if [ "$answer" = "+PONG" ]; then
			echo "check redis: ok ($host:$rport answered PONG)"
		else
			echo "check redis: FAILED ($host:$rport: ${answer:-no answer})"
		fi
	fi
	secret=${IRODS_ADMIN_CREDENTIAL:-}
	if [ -z "$secret" ]; then
		echo "check secret: FAILED (IRODS_ADMIN_CREDENTIAL is not set)"
	elif [ -r "$secret" ] && [ -s "$secret" ]; then
		echo "check secret: ok ($secret readable, $(wc -c <"$secret") bytes)"
	else
		echo "check secret: FAILED ($secret is missing, unreadable or empty)"
	fi
else
	url=${STAGER_URL:-http://stager4ui:3000/}
	first=$(busybox timeout 5 busybox wget -q -O - "$url" 2>&1 | head -n 1)
	case "$first" in
	"dccn-lab stager stand-in: running"*) echo "check stager: ok ($url: $first)" ;;
	*) echo "check stager: FAILED ($url: ${first:-no answer})" ;;
	esac
fi
