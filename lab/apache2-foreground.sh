#!/bin/bash
# apache2-foreground of dccn-lab/php-apache:8, as in the official php:apache image
set -e
# shellcheck source=/dev/null
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
rm -f "$APACHE_PID_FILE"
exec apache2 -DFOREGROUND "$@"
