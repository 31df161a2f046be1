#!/usr/bin/env bash
# daemon-json.sh - merge settings into /etc/docker/daemon.json; restart the engine only on a change.
#
# The daemon.json part of the DCCN kickstart step (document chapter 4.2.1), made safe to re-run:
# - the file is merged, not clobbered: the fragment is applied as a JSON merge patch (RFC 7386):
#   objects merge key by key, any other value replaces, and `null` deletes a key;
# - STORAGE_DRIVER=devicemapper adds the document's thin pool options
#   (dm.thinpooldev=/dev/mapper/docker-thinpool, dm.use_deferred_removal=true,
#   dm.use_deferred_deletion=true) and drops overlay2.* options; STORAGE_DRIVER=overlay2 drops dm.*;
# - devicemapper is refused on an engine 25.0 or newer (removed there);
# - a legacy /etc/systemd/system/docker.service.d/swarm.conf is renamed to
#   swarm.conf.disabled-by-dccn-swarm (the document renames it to .bk) and systemd reloaded;
# - a -H/--host other than unix:// or fd:// in the docker unit, any drop-in (swarm.conf aside) or
#   /etc/sysconfig/docker, /etc/default/docker, or in the ExecStart systemd runs, is refused
#   (insecure-tcp-unit) before anything changes: the fix is to edit that file by hand;
# - a `hosts` entry (in any spelling of the key) other than unix:// or fd:// (a TCP socket, e.g. the document's
#   tcp://0.0.0.0:2375) is refused unless tlsverify is true and tlscacert, tlscert and tlskey name
#   existing files: engine access is over SSH, or TCP with mutual TLS;
# - the engine is restarted (systemctl; the init script through `service` where systemd does not
#   run and no systemctl shim is installed) only when daemon.json or the unit changed, or a restart
#   from an earlier run did not complete; then `docker info` must
#   answer within WAIT_TIMEOUT seconds and report the configured storage driver.
# A second run with the same input changes nothing, restarts nothing and says changed=0.
#
# Input: the JSON object to merge, on stdin (or in DAEMON_JSON; empty input means {}).
# Environment (all optional):
#   DAEMON_JSON     the fragment, instead of stdin.
#   STORAGE_DRIVER  devicemapper | overlay2 | "" (leave the storage settings as they are).
#   ENGINE_VERSION  engine version for the devicemapper check; default: from `dockerd --version`.
#   WAIT_TIMEOUT    seconds to wait for `docker info` after a restart, default 60.
#   JSON_TOOL       python3 | python | jq; default: the first one found. Debian minbase has none
#                   of them (python3-minimal lacks the json module): install jq or python3.
#   DCCN_ROOT       prefix for file paths (/etc, /run), for tests. default "".
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> file=<unchanged|written> swarm_conf=<none|moved> restarted=<0|1>
#               storage_driver=<driver|default> tool=<python3|python|jq>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>, codes:
#   bad-storage-driver, no-json-tool, bad-input, bad-existing, bad-storage-opts, engine-too-new,
#   engine-version-unknown, insecure-tcp-host, insecure-tcp-unit, tls-file-missing, hosts-conflict, invalid-config,
#   no-init, restart-failed, engine-timeout, driver-mismatch
set -euo pipefail

PROG=daemon-json
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
CHANGED=0
RESULT_DONE=0

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
run() {
  log "+ $*"
  "$@" >&2
}
# use_systemctl: systemd runs this node, or the systemctl on PATH is not systemd's own (a shim
# such as the lab's). systemd's systemctl in a container without systemd as PID 1 is not used.
use_systemctl() {
  command -v systemctl >/dev/null 2>&1 || return 1
  [ -d "${ROOT}/run/systemd/system" ] && return 0
  ! systemctl --version 2>/dev/null | grep -q '^systemd '
}
have_sysv() { [ -x "${ROOT}/etc/init.d/docker" ] && command -v service >/dev/null 2>&1; }

engine_version() {
  local out
  if [ -n "${ENGINE_VERSION:-}" ]; then
    printf '%s\n' "$ENGINE_VERSION"
    return 0
  fi
  out=$(dockerd --version 2>/dev/null) || return 1
  out=$(printf '%s\n' "$out" | sed -n 's/^Docker version \([^ ,]*\).*/\1/p' | head -n 1)
  [ -n "$out" ] || return 1
  printf '%s\n' "$out"
}

CONF_DIR="${ROOT}/etc/docker"
CONF="${CONF_DIR}/daemon.json"
PENDING="${CONF_DIR}/.dccn-swarm-restart-pending"
DROPIN_DIR="${ROOT}/etc/systemd/system/docker.service.d"
SWARM_CONF="${DROPIN_DIR}/swarm.conf"
DM_OPTS='dm.thinpooldev=/dev/mapper/docker-thinpool dm.use_deferred_removal=true dm.use_deferred_deletion=true'
STORAGE_DRIVER="${STORAGE_DRIVER:-}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-60}"
case "$STORAGE_DRIVER" in
  '' | devicemapper | overlay2) ;;
  *) die bad-storage-driver "STORAGE_DRIVER must be devicemapper, overlay2 or empty, not '${STORAGE_DRIVER}'" ;;
esac
case "$WAIT_TIMEOUT" in
  '' | *[!0-9]*) die bad-timeout "WAIT_TIMEOUT must be a whole number of seconds" ;;
esac

# --- JSON handling: python (2.7 or 3) or jq; both implement the same two operations. -------------
# merge EXISTING FRAGMENT DRIVER NEW OLD_CANON: NEW = canonical(merge-patch(EXISTING, FRAGMENT) +
#   storage options); OLD_CANON = canonical(EXISTING). Exit 3: EXISTING is not a JSON object,
#   4: FRAGMENT is not a JSON object, 5: storage-opts is not a list of strings.
# facts FILE: "key<TAB>value" lines: storage-driver, host (one per entry), tlsverify, tlscacert,
#   tlscert, tlskey.
PY_PROGRAM='
import json, sys

def load(path):
    with open(path) as f:
        text = f.read()
    if not text.strip():
        return {}
    return json.loads(text)

def patch(target, p):
    if not isinstance(p, dict):
        return p
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in p.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = patch(out.get(k), v)
    return out

def dump(obj, path):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True, separators=(",", ": ")) + "\n")

def key(opt):
    return opt.split("=", 1)[0]

def merge(existing, fragment, driver, dm_opts, new_path, old_path):
    try:
        cur = load(existing)
    except ValueError as e:
        sys.stderr.write("%s: %s\n" % (existing, e))
        sys.exit(3)
    if not isinstance(cur, dict):
        sys.exit(3)
    try:
        frag = load(fragment)
    except ValueError as e:
        sys.stderr.write("input: %s\n" % e)
        sys.exit(4)
    if not isinstance(frag, dict):
        sys.exit(4)
    new = patch(cur, frag)
    if driver:
        opts = new.get("storage-opts", [])
        if not isinstance(opts, list) or not all(isinstance(o, type(u"")) or isinstance(o, str) for o in opts):
            sys.exit(5)
        ours = dm_opts.split() if driver == "devicemapper" else []
        drop = "overlay2." if driver == "devicemapper" else "dm."
        keep = [o for o in opts if not o.startswith(drop) and key(o) not in [key(d) for d in ours]]
        opts = keep + ours
        new["storage-driver"] = driver
        if opts:
            new["storage-opts"] = opts
        else:
            new.pop("storage-opts", None)
    dump(new, new_path)
    dump(cur, old_path)

def facts(path):
    conf = load(path)
    out = []
    if "storage-driver" in conf:
        out.append(("storage-driver", conf["storage-driver"]))
    # dockerd decodes daemon.json case-insensitively (Go encoding/json): Hosts and HOSTS are hosts.
    for k in conf:
        if k.lower() != "hosts" or conf[k] is None:
            continue
        hosts = conf[k] if isinstance(conf[k], list) else [conf[k]]
        for h in hosts:
            out.append(("host", h))
    for k in ("tlsverify", "tlscacert", "tlscert", "tlskey"):
        if k in conf:
            v = conf[k]
            out.append((k, json.dumps(v) if isinstance(v, bool) else v))
    for k, v in out:
        sys.stdout.write("%s\t%s\n" % (k, str(v).replace("\n", " ").replace("\t", " ")))

if sys.argv[1] == "merge":
    merge(*sys.argv[2:8])
else:
    facts(sys.argv[2])
'

# shellcheck disable=SC2016 # jq variables, not shell ones
JQ_MERGE='
def mp($p):
  if ($p | type) == "object" then
    reduce ($p | keys_unsorted[]) as $k
      ((if type == "object" then . else {} end);
       if $p[$k] == null then del(.[$k]) else .[$k] = (.[$k] | mp($p[$k])) end)
  else $p end;
def key: split("=")[0];
mp($frag[0])
| if $driver == "" then . else
    ((.["storage-opts"] // []) as $opts
     | if ($opts | type) != "array" or any($opts[]; type != "string") then error("storage-opts") else . end
     | (if $driver == "devicemapper" then ($dm | split(" ")) else [] end) as $ours
     | (if $driver == "devicemapper" then "overlay2." else "dm." end) as $drop
     | ([$opts[] | select((startswith($drop) | not) and (key as $k | all($ours[]; key != $k)))] + $ours) as $new
     | .["storage-driver"] = $driver
     | if ($new | length) > 0 then .["storage-opts"] = $new else del(.["storage-opts"]) end)
  end
'
# shellcheck disable=SC2016 # jq variables, not shell ones
JQ_FACTS='
(if has("storage-driver") then "storage-driver\t\(.["storage-driver"])" else empty end),
(to_entries[] | select((.key | ascii_downcase) == "hosts" and .value != null) | .value
  | if type == "array" then .[] else . end | "host\t\(.)"),
(("tlsverify", "tlscacert", "tlscert", "tlskey") as $k
  | if has($k) then "\($k)\t\(.[$k] | tostring | gsub("[\n\t]"; " "))" else empty end)
'

json_merge() { # EXISTING FRAGMENT DRIVER NEW OLD_CANON
  local rc=0
  case "$JSON_TOOL" in
    jq)
      local existing=$1 empty="${WORK}/empty.json"
      if [ ! -s "$existing" ] || ! grep -q '[^[:space:]]' "$existing"; then
        printf '{}\n' >"$empty"
        existing=$empty
      fi
      jq -e 'type == "object"' "$existing" >/dev/null 2>&1 || return 3
      if ! grep -q '[^[:space:]]' "$2"; then printf '{}\n' >"$2"; fi
      jq -e 'type == "object"' "$2" >/dev/null 2>&1 || return 4
      jq -S . "$existing" >"$5" || return 3
      jq -S --slurpfile frag "$2" --arg driver "$3" --arg dm "$DM_OPTS" "$JQ_MERGE" "$existing" >"$4" ||
        rc=$?
      [ "$rc" = 0 ] || return 5
      ;;
    *)
      "$JSON_TOOL" -c "$PY_PROGRAM" merge "$1" "$2" "$3" "$DM_OPTS" "$4" "$5" || return $?
      ;;
  esac
}
json_facts() { # FILE
  case "$JSON_TOOL" in
    jq) jq -r "$JQ_FACTS" "$1" ;;
    *) "$JSON_TOOL" -c "$PY_PROGRAM" facts "$1" ;;
  esac
}

if [ -z "${JSON_TOOL:-}" ]; then
  for t in python3 python jq; do
    if command -v "$t" >/dev/null 2>&1 && { [ "$t" = jq ] || "$t" -c 'import json' >/dev/null 2>&1; }; then
      JSON_TOOL=$t
      break
    fi
  done
  [ -n "${JSON_TOOL:-}" ] ||
    die no-json-tool "merging daemon.json needs python3, python or jq and none is installed:" \
      "install one (Debian: apt-get install jq, or python3 - python3-minimal has no json module;" \
      "CentOS: yum install jq or python3)"
else
  command -v "$JSON_TOOL" >/dev/null 2>&1 || die no-json-tool "JSON_TOOL=${JSON_TOOL} is not installed"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dccn-daemon-json.XXXXXX")

# --- 1. Compute the new file; nothing on the node changes in this part. --------------------------
if [ -n "${DAEMON_JSON+set}" ]; then
  printf '%s\n' "$DAEMON_JSON" >"${WORK}/fragment.json"
else
  cat >"${WORK}/fragment.json"
fi
existing="${WORK}/none.json"
: >"$existing"
[ ! -f "$CONF" ] || existing=$CONF

rc=0
json_merge "$existing" "${WORK}/fragment.json" "$STORAGE_DRIVER" "${WORK}/new.json" "${WORK}/old.json" || rc=$?
case "$rc" in
  0) ;;
  3) die bad-existing "${CONF} is not a JSON object: fix or remove it by hand (nothing was changed)" ;;
  4) die bad-input "the input is not a JSON object" ;;
  5) die bad-storage-opts "storage-opts in ${CONF} or the input is not a list of strings" ;;
  *) die bad-input "could not merge the input into ${CONF} with ${JSON_TOOL} (exit ${rc})" ;;
esac

driver=""
hosts=()
declare -A tls=()
while IFS=$'\t' read -r k v; do
  case "$k" in
    storage-driver) driver=$v ;;
    host) hosts+=("$v") ;;
    tlsverify | tlscacert | tlscert | tlskey) tls[$k]=$v ;;
  esac
done < <(json_facts "${WORK}/new.json")

if [ "$driver" = devicemapper ]; then
  engine=$(engine_version) ||
    die engine-version-unknown "cannot tell the engine version for the devicemapper check: set ENGINE_VERSION"
  major="${engine%%.*}"
  case "$major" in
    '' | *[!0-9]*) die engine-version-unknown "cannot parse the engine version '${engine}'" ;;
  esac
  if [ "$major" -ge 25 ]; then
    die engine-too-new "storage-driver devicemapper: Docker Engine ${engine} has no devicemapper storage" \
      "driver (deprecated in 20.10, removed in 25.0); use STORAGE_DRIVER=overlay2"
  fi
fi

tcp_hosts=()
# ${a[@]+"${a[@]}"}: an empty array under `set -u` on bash < 4.4 (CentOS 7).
for h in ${hosts[@]+"${hosts[@]}"}; do
  # dockerd reads the scheme in any case and a bare host:port as tcp://.
  hl=$(printf '%s' "$h" | tr '[:upper:]' '[:lower:]' | sed 's/^[[:space:]]*//')
  case "$hl" in
    unix://* | fd://* | fd:) ;;
    *) tcp_hosts+=("$h") ;;
  esac
done
if [ "${#tcp_hosts[@]}" -gt 0 ]; then
  if [ "${tls[tlsverify]:-}" != true ] || [ -z "${tls[tlscacert]:-}" ] || [ -z "${tls[tlscert]:-}" ] ||
    [ -z "${tls[tlskey]:-}" ]; then
    die insecure-tcp-host "refusing hosts entry ${tcp_hosts[*]}: a TCP socket without mutual TLS gives" \
      "root on this node to anyone who can reach it. Reach the engine over SSH (unix socket), or set" \
      "tlsverify=true with tlscacert, tlscert and tlskey. To drop an entry from an existing daemon.json," \
      "pass {\"hosts\": null} or the wanted list. Nothing was changed."
  fi
  for k in tlscacert tlscert tlskey; do
    [ -f "${ROOT}${tls[$k]}" ] || die tls-file-missing "${k} ${tls[$k]} does not exist on this node"
  done
fi

# A TCP socket opened outside daemon.json: a -H/--host that is not unix:// or fd:// in the docker
# unit, any of its drop-ins (the legacy swarm.conf excepted: it is moved aside below), or the
# environment files the init scripts read. Listed as FILE:LINE: VALUE; nothing is changed on a hit.
unit_tcp_hosts() {
  local f files=()
  for f in "${ROOT}"/etc/systemd/system/docker.service "${ROOT}"/run/systemd/system/docker.service \
    "${ROOT}"/usr/lib/systemd/system/docker.service "${ROOT}"/lib/systemd/system/docker.service \
    "${ROOT}"/etc/systemd/system/docker.service.d/*.conf "${ROOT}"/run/systemd/system/docker.service.d/*.conf \
    "${ROOT}"/usr/lib/systemd/system/docker.service.d/*.conf "${ROOT}"/lib/systemd/system/docker.service.d/*.conf \
    "${ROOT}"/etc/sysconfig/docker "${ROOT}"/etc/default/docker; do
    [ -f "$f" ] || continue
    [ "$f" != "$SWARM_CONF" ] || continue
    files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk '
    function check(text, where,   n, t, i, v) {
      gsub(/["\047]/, " ", text)
      n = split(text, t, /[ \t=]+/)
      for (i = 1; i <= n; i++) {
        v = ""
        if (t[i] == "-H" || t[i] == "--host") v = t[i + 1]
        else if (t[i] ~ /^-H./) v = substr(t[i], 3)
        else continue
        v = tolower(v)
        if (v ~ /^(unix|fd):\/\// || v == "fd:") continue
        print where ": " (v == "" ? "(empty)" : v)
      }
    }
    FNR == 1 { acc = "" }
    /^[ \t]*[#;]/ { next }
    {
      line = $0
      if (line ~ /\\$/) { acc = acc substr(line, 1, length(line) - 1) " "; next }
      check(acc line, FILENAME ":" FNR)
      acc = ""
    }
  ' "${files[@]}"
}
unit_hits=$(unit_tcp_hosts)
if [ -z "$unit_hits" ] && [ ! -f "$SWARM_CONF" ] && use_systemctl; then
  # What systemd runs, whatever file it came from (the legacy swarm.conf is moved aside below).
  execstart=$(systemctl show -p ExecStart docker 2>/dev/null || true)
  unit_hits=$(printf '%s\n' "$execstart" | sed -n 's/.*argv\[\]=\([^;]*\).*/\1/p' | tr ' ' '\n' |
    awk 'p { v = tolower($0); if (v !~ /^(unix|fd):\/\// && v != "fd:") print "systemctl show -p ExecStart docker: " v; p = 0; next }
         $0 == "-H" || $0 == "--host" { p = 1; next }
         /^(-H|--host)=/ { v = tolower($0); sub(/^(-h|--host)=/, "", v); if (v !~ /^(unix|fd):\/\// && v != "fd:") print "systemctl show -p ExecStart docker: " v; next }
         /^-H./ { v = tolower(substr($0, 3)); if (v !~ /^(unix|fd):\/\// && v != "fd:") print "systemctl show -p ExecStart docker: " v }')
fi
if [ -n "$unit_hits" ]; then
  die insecure-tcp-unit "the docker unit opens a TCP socket (-H) outside daemon.json: $(printf '%s' "$unit_hits" | tr '\n' ';')" \
    "a TCP socket without mutual TLS gives root on this node to anyone who can reach it. Remove the -H" \
    "(or point it at unix:// or fd://) in that file, run systemctl daemon-reload, and run again." \
    "Nothing was changed."
fi

file_changed=0
cmp -s "${WORK}/new.json" "${WORK}/old.json" || file_changed=1
if [ "$file_changed" = 1 ] && command -v dockerd >/dev/null 2>&1 &&
  dockerd --help 2>&1 | grep -q -- '--validate'; then
  if ! out=$(dockerd --validate --config-file "${WORK}/new.json" 2>&1); then
    die invalid-config "dockerd --validate rejects the merged configuration: ${out}"
  fi
fi

# --- 2. The legacy systemd drop-in. -------------------------------------------------------------
unit_changed=0
swarm_conf=none
if [ -f "$SWARM_CONF" ]; then
  target="${SWARM_CONF}.disabled-by-dccn-swarm"
  [ ! -e "$target" ] || target="${target}.$(date +%Y%m%d%H%M%S)"
  run mv "$SWARM_CONF" "$target"
  swarm_conf=moved
  unit_changed=1
  CHANGED=1
  if use_systemctl; then
    run systemctl daemon-reload
  fi
fi

# With `hosts` in daemon.json, a -H on the dockerd command line stops the engine from starting.
if [ "${#hosts[@]}" -gt 0 ] && use_systemctl; then
  execstart=$(systemctl show -p ExecStart docker 2>/dev/null || true)
  if printf '%s\n' "$execstart" | grep -Eq -- '(^|[ ;=])(-H|--host)([ =]|$)'; then
    die hosts-conflict "daemon.json sets hosts, but the docker unit starts dockerd with -H (${execstart}):" \
      "dockerd refuses to start with both. Add a drop-in that resets ExecStart without -H, or drop hosts."
  fi
fi

# --- 3. Write. -----------------------------------------------------------------------------------
file=unchanged
if [ "$file_changed" = 1 ]; then
  install -d -m 0755 "$CONF_DIR"
  if [ -f "$CONF" ]; then
    cp -p "$CONF" "${CONF}.dccn-swarm.bak"
  fi
  : >"$PENDING"
  cp "${WORK}/new.json" "${CONF}.tmp"
  chmod 0644 "${CONF}.tmp"
  mv -f "${CONF}.tmp" "$CONF"
  log "wrote ${CONF}"
  file=written
  CHANGED=1
fi

# --- 4. Restart, only when something changed (or an earlier restart did not finish). --------------
restarted=0
if [ "$file_changed" = 1 ] || [ "$unit_changed" = 1 ] || [ -e "$PENDING" ]; then
  [ -e "$PENDING" ] || { install -d -m 0755 "$CONF_DIR" && : >"$PENDING"; }
  CHANGED=1
  # A swarm node comes back "pending" for a while; the next step (joining, labelling) needs it active.
  swarm_before=$(timeout 10 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
  if use_systemctl; then
    run systemctl restart docker || die restart-failed "systemctl restart docker failed; see journalctl -u docker"
  elif have_sysv; then
    run service docker restart || die restart-failed "service docker restart failed"
  else
    die no-init "no systemd and no /etc/init.d/docker: restart dockerd by hand to apply ${CONF}"
  fi
  deadline=$((SECONDS + WAIT_TIMEOUT))
  while :; do
    if running_driver=$(timeout 10 docker info --format '{{.Driver}}' 2>/dev/null); then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die engine-timeout "the engine did not answer \`docker info\` within ${WAIT_TIMEOUT}s after the restart"
    fi
    sleep 1
  done
  if [ "$swarm_before" = active ]; then
    until [ "$(timeout 10 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)" = active ]; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        die swarm-timeout "the engine is back but its swarm state is not active again within ${WAIT_TIMEOUT}s"
      fi
      sleep 1
    done
    log "swarm state active again"
  fi
  if [ -n "$driver" ] && [ "$running_driver" != "$driver" ]; then
    die driver-mismatch "the engine runs storage driver '${running_driver}', not '${driver}' as configured"
  fi
  rm -f "$PENDING"
  restarted=1
  log "engine restarted (storage driver ${running_driver})"
fi

if [ "$CHANGED" = 0 ]; then
  log "nothing changed"
fi
result "file=${file}" "swarm_conf=${swarm_conf}" "restarted=${restarted}" \
  "storage_driver=${driver:-default}" "tool=${JSON_TOOL}"
