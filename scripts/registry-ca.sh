#!/usr/bin/env bash
# registry-ca.sh - trust a private registry's CA: /etc/docker/certs.d/<host>:<port>/ca.crt.
#
# The document (chapter 3.2) copies the self-signed certificate of docker-registry.dccn.nl:5000 to
# /etc/docker/certs.d/docker-registry.dccn.nl:5000/ca.crt on every node. This does that by content
# (an unchanged certificate is not rewritten), with mode 644 and directories 755. The engine reads
# certs.d on every pull and push: no restart is needed.
# Optionally REGISTRY_ADDRESS pins the registry name in /etc/hosts with a line marked
# "# dccn-swarm registry-ca" (for a lab without DNS); /etc/hosts is rewritten in place, since in a
# container it is a bind mount. Without REGISTRY_ADDRESS, a marked line for the host is removed.
#
# Input: the PEM certificate(s) on stdin, or in CA_CERT. Not read when REMOVE=1.
# Environment:
#   REGISTRY_HOST     required, e.g. docker-registry.dccn.nl.
#   REGISTRY_PORT     default 5000; 443 or "" gives certs.d/<host> (the engine's name for port 443).
#   REGISTRY_ADDRESS  optional IP address for the marked /etc/hosts line.
#   REMOVE            1: remove the certificate (and its directory when empty) and the marked line.
#   CA_CERT           the certificate, instead of stdin.
#   DCCN_ROOT         prefix for file paths (/etc), for tests. default "".
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> cert=<path> ca=<unchanged|written|removed|absent> sha256=<hex|none>
#               hosts=<unchanged|added|updated|removed|none>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>, codes:
#   no-host, bad-host, bad-port, bad-address, no-cert, bad-cert
set -euo pipefail

PROG=registry-ca
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
CHANGED=0
RESULT_DONE=0
MARK="# dccn-swarm registry-ca"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
result() {
  local line="DCCN_RESULT changed=${CHANGED}" kv
  for kv in "$@"; do line+=" ${kv//[[:space:]]/_}"; done
  printf '%s\n' "$line"
  RESULT_DONE=1
}
die() {
  local code=$1
  shift
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  result "error=${code}"
  exit 1
}
WORK=""
on_exit() {
  local rc=$1
  [ -z "$WORK" ] || rm -rf "$WORK"
  if [ "$rc" -ne 0 ] && [ "$RESULT_DONE" = 0 ]; then
    result error=unexpected "exit=${rc}"
  fi
}
trap 'on_exit $?' EXIT

HOST="${REGISTRY_HOST:-}"
PORT="${REGISTRY_PORT-5000}"
ADDRESS="${REGISTRY_ADDRESS:-}"
REMOVE="${REMOVE:-0}"
[ -n "$HOST" ] || die no-host "REGISTRY_HOST is not set, e.g. REGISTRY_HOST=docker-registry.dccn.nl"
case "$HOST" in
  *[!A-Za-z0-9.-]* | -* | .*) die bad-host "REGISTRY_HOST '${HOST}' is not a host name" ;;
esac
case "$PORT" in
  *[!0-9]*) die bad-port "REGISTRY_PORT '${PORT}' is not a port number" ;;
esac
case "$ADDRESS" in
  *[!0-9A-Fa-f.:]*) die bad-address "REGISTRY_ADDRESS '${ADDRESS}' is not an IP address" ;;
esac
case "$REMOVE" in
  0 | 1) ;;
  *) die bad-remove "REMOVE must be 0 or 1" ;;
esac
if [ "$REMOVE" = 1 ]; then
  ADDRESS=""
fi

name="$HOST"
if [ -n "$PORT" ] && [ "$PORT" != 443 ]; then
  name="${HOST}:${PORT}"
fi
certs_d="${ROOT}/etc/docker/certs.d"
dir="${certs_d}/${name}"
cert="${dir}/ca.crt"
hosts_file="${ROOT}/etc/hosts"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dccn-registry-ca.XXXXXX")

# --- the certificate ------------------------------------------------------------------------------
sha=none
if [ "$REMOVE" = 1 ]; then
  ca=absent
  if [ -e "$cert" ]; then
    rm -f "$cert"
    log "removed ${cert}"
    ca=removed
    CHANGED=1
  fi
  if [ -d "$dir" ] && [ -z "$(ls -A "$dir")" ]; then
    rmdir "$dir"
    CHANGED=1
  fi
else
  if [ -n "${CA_CERT+set}" ]; then
    printf '%s\n' "$CA_CERT" >"${WORK}/ca.crt"
  else
    cat >"${WORK}/ca.crt"
  fi
  # Normalise: drop carriage returns and blank lines at the ends, one trailing newline.
  sed -e 's/\r$//' "${WORK}/ca.crt" | awk 'NF { for (; blank > 0; blank--) print ""; print; seen = 1; next }
    seen { blank++ }' >"${WORK}/ca.norm"
  grep -q -- '-----BEGIN CERTIFICATE-----' "${WORK}/ca.norm" ||
    die no-cert "no PEM certificate (-----BEGIN CERTIFICATE-----) on stdin / in CA_CERT"
  if command -v openssl >/dev/null 2>&1; then
    openssl x509 -noout -in "${WORK}/ca.norm" >/dev/null 2>&1 ||
      die bad-cert "openssl cannot read the certificate given"
  fi
  sha=$(sha256sum "${WORK}/ca.norm" | cut -d' ' -f1)
  for d in "${ROOT}/etc/docker" "$certs_d" "$dir"; do
    if [ ! -d "$d" ] || [ "$(stat -c %a "$d")" != 755 ]; then
      install -d -m 0755 "$d"
      CHANGED=1
    fi
  done
  ca=unchanged
  if [ ! -f "$cert" ] || ! cmp -s "${WORK}/ca.norm" "$cert"; then
    cp "${WORK}/ca.norm" "${cert}.tmp"
    chmod 0644 "${cert}.tmp"
    mv -f "${cert}.tmp" "$cert"
    log "wrote ${cert} (sha256 ${sha})"
    ca=written
    CHANGED=1
  elif [ "$(stat -c %a "$cert")" != 644 ]; then
    chmod 0644 "$cert"
    ca=written
    CHANGED=1
  fi
fi

# --- /etc/hosts ------------------------------------------------------------------------------------
hosts=none
old_line=""
if [ -f "$hosts_file" ]; then
  old_line=$(awk -v m="$MARK" -v h="$HOST" 'index($0, m) && $2 == h { print; exit }' "$hosts_file")
fi
new_line=""
[ -z "$ADDRESS" ] || new_line="${ADDRESS} ${HOST} ${MARK}"
if [ "$old_line" != "$new_line" ]; then
  {
    if [ -f "$hosts_file" ]; then
      awk -v m="$MARK" -v h="$HOST" '!(index($0, m) && $2 == h)' "$hosts_file"
    fi
    [ -z "$new_line" ] || printf '%s\n' "$new_line"
  } >"${WORK}/hosts"
  # In place, not by rename: /etc/hosts is a bind mount inside containers.
  cat "${WORK}/hosts" >"$hosts_file"
  CHANGED=1
  if [ -z "$new_line" ]; then
    hosts=removed
  elif [ -z "$old_line" ]; then
    hosts=added
  else
    hosts=updated
  fi
  log "/etc/hosts: ${hosts} ${new_line:-${old_line}}"
elif [ -n "$new_line" ]; then
  hosts=unchanged
fi
if [ -n "$new_line" ] && [ -f "$hosts_file" ] &&
  awk -v m="$MARK" -v h="$HOST" '!index($0, m) && $1 !~ /^#/ { for (i = 2; i <= NF; i++) if ($i == h) f = 1 }
    END { exit !f }' "$hosts_file"; then
  log "warning: ${hosts_file} has another line for ${HOST}; the first one found wins"
fi

if [ "$CHANGED" = 0 ]; then
  log "nothing changed"
fi
result "cert=${cert#"$ROOT"}" "ca=${ca}" "sha256=${sha}" "hosts=${hosts}"
