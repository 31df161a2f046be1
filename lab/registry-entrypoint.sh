#!/bin/sh
# /entrypoint.sh of dccn-lab/registry:2.8, as in the official registry:2 image
set -e
case "$1" in
*.yaml | *.yml) set -- registry serve "$@" ;;
serve | garbage-collect | help | -*) set -- registry "$@" ;;
esac
exec "$@"
