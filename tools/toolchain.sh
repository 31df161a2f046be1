#!/usr/bin/env bash
# npm run toolchain: make the Pulumi CLI, the Node.js language host and the resource plugins that
# package.json's @pulumi/* packages ask for available on a machine that reaches no download site but
# the Go module proxy. Everything is pinned (tools/toolchain/) and built once into a cache outside the
# work tree; a second run only checks the cache. Then: `. tools/env.sh`. See tools/toolchain/README.md.
#
# Usage: bash tools/toolchain.sh [--rebuild] [--no-system] [--allow-missing-plugins]
#   --rebuild                rebuild this toolchain even if the cache holds it
#   --no-system              ignore a pulumi already installed on PATH
#   --allow-missing-plugins  exit 0 even when a resource plugin is BLOCKED (see pins.env)
# Environment: DCCN_TOOLCHAIN_CACHE (cache root), DCCN_TOOLCHAIN_ALLOW_MISSING_PLUGINS=1,
#   DCCN_TOOLCHAIN_NO_SYSTEM=1, and Go's own (GOPROXY, GOMODCACHE, GOCACHE, ...).
# Exit codes: 0 complete; 1 a step failed; 3 complete except BLOCKED plugins.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tools/toolchain/lib.sh disable=SC1091
. "$REPO/tools/toolchain/lib.sh"
toolchain_paths "$REPO"
# shellcheck source=tools/toolchain/plugins/docker.sh disable=SC1091
. "$TC_DIR/plugins/docker.sh"

REBUILD=0
NO_SYSTEM=${DCCN_TOOLCHAIN_NO_SYSTEM:-0}
ALLOW_MISSING=${DCCN_TOOLCHAIN_ALLOW_MISSING_PLUGINS:-0}
for arg in "$@"; do
  case $arg in
    --rebuild) REBUILD=1 ;;
    --no-system) NO_SYSTEM=1 ;;
    --allow-missing-plugins) ALLOW_MISSING=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) printf 'toolchain: unknown argument %s (try --help)\n' "$arg" >&2; exit 1 ;;
  esac
done

# ---------------------------------------------------------------------------------------------------
# Output, steps, failure
T_START=$(date +%s)
CURRENT_STEP="start"
STEP_START=$T_START
WORK=""
INSTALLING=0
LOG_DIR="$TC_CACHE_ROOT/logs"

say() { printf 'toolchain: %s\n' "$*"; }
step() {
  CURRENT_STEP=$1
  STEP_START=$(date +%s)
  printf '==> %s\n' "$1"
}
step_ok() { printf '    ok: %s (%ss)\n' "${1:-done}" "$(($(date +%s) - STEP_START))"; }
die() {
  printf '\ntoolchain: FAILED in step "%s": %s\n' "$CURRENT_STEP" "$1" >&2
  if [ -n "${2:-}" ]; then printf 'toolchain: to fix: %s\n' "$2" >&2; fi
  if [ "$INSTALLING" = 1 ]; then
    printf 'toolchain: %s has no stamp now, so the next run rebuilds it; no half-installed plugin was left.\n' "$TC_CACHE" >&2
  else
    printf 'toolchain: nothing was installed; the cache at %s is as it was.\n' "$TC_CACHE" >&2
  fi
  exit 1
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'die "interrupted"' INT TERM

# run_logged NAME CMD...: run CMD with its output in LOG_DIR/NAME.log; on failure show the tail.
run_logged() {
  local log="$LOG_DIR/$1.log"
  shift
  if "$@" >"$log" 2>&1; then return 0; fi
  printf -- '---- last lines of %s ----\n' "$log" >&2
  tail -n 40 "$log" >&2
  printf -- '----\n' >&2
  return 1
}

# The pulumi CLI with the toolchain's own state, no update checks, no plugin downloads.
tc_pulumi() {
  local bin=$1
  shift
  PULUMI_HOME="$TC_PULUMI_HOME" PULUMI_SKIP_UPDATE_CHECK=true \
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true "$bin" "$@"
}

# plugin_installed HOME NAME VERSION: the plugin cache entry exists and is complete.
plugin_installed() {
  local d="$1/plugins/resource-$2-v$3"
  [ -x "$d/pulumi-resource-$2" ] && [ ! -e "$d.partial" ]
}

# Split TC_PLUGINS entries into P_NAME P_VERSION P_MODULE P_MODVER P_PKG P_LDVAR.
plugin_fields() {
  IFS='|' read -r P_NAME P_VERSION P_MODULE P_MODVER P_PKG P_LDVAR <<<"$1"
}

BLOCKED=()
report_blocked() {
  local entry
  BLOCKED=()
  for entry in "${TC_PLUGINS[@]}"; do
    plugin_fields "$entry"
    if [ -z "$P_MODVER" ]; then BLOCKED+=("$P_NAME $P_VERSION"); fi
  done
}

finish() {
  local where=$1 b
  say "pulumi $PULUMI_VERSION ready in $where ($(($(date +%s) - T_START))s in all)"
  say "use it: . tools/env.sh   (puts it first on PATH, sets PULUMI_HOME and the local file backend)"
  if [ "${#BLOCKED[@]}" -gt 0 ]; then
    for b in "${BLOCKED[@]}"; do
      printf 'toolchain: BLOCKED: resource plugin %s is not installed: no pinned, served Go module version of its source (tools/toolchain/pins.env, README.md). Programs using it fail with "no resource plugin ... found".\n' "$b" >&2
    done
    if [ "$ALLOW_MISSING" = 1 ]; then
      say "continuing without them (--allow-missing-plugins)"
      exit 0
    fi
    exit 3
  fi
  exit 0
}

report_blocked

# ---------------------------------------------------------------------------------------------------
# 1. A suitable pulumi already installed (the usual case with internet): use it and its plugin cache.
use_system_pulumi() {
  local p dir home entry ver lh state="$REPO/.state/toolchain.env" content
  while IFS= read -r p; do
    dir=$(cd "$(dirname "$p")" && pwd -P)
    [ "$dir" = "$(cd "$TC_BIN" 2>/dev/null && pwd -P || true)" ] && continue
    ver=$("$p" version 2>/dev/null || true)
    [ "$ver" = "$PULUMI_VERSION" ] || continue
    lh=$(dirname "$p")/pulumi-language-nodejs
    [ -x "$lh" ] || lh=$(command -v pulumi-language-nodejs || true)
    [ -n "$lh" ] || continue
    home=${PULUMI_HOME:-$HOME/.pulumi}
    for entry in "${TC_PLUGINS[@]}"; do
      plugin_fields "$entry"
      plugin_installed "$home" "$P_NAME" "$P_VERSION" || continue 2
    done
    content=$(printf '# Written by tools/toolchain.sh: an installed pulumi %s is used.\nTC_BIN=%q\nTC_PULUMI_HOME=%q\n' \
      "$PULUMI_VERSION" "$(dirname "$p")" "$home")
    mkdir -p "$REPO/.state"
    if [ ! -f "$state" ] || [ "$(cat "$state")" != "$content" ]; then
      printf '%s\n' "$content" >"$state"
    fi
    say "using the installed $p ($ver) with plugins in $home/plugins"
    BLOCKED=()
    finish "$(dirname "$p")"
  done < <(type -ap pulumi 2>/dev/null || true)
  return 0
}

if [ "$NO_SYSTEM" != 1 ]; then
  step "look for an installed pulumi $PULUMI_VERSION with the plugins"
  use_system_pulumi
  step_ok "none suitable; using the cache $TC_CACHE"
fi
# From here on tools/env.sh must point at the cache, not at a system pulumi chosen earlier.
if [ -f "$REPO/.state/toolchain.env" ]; then rm -f "$REPO/.state/toolchain.env"; fi

# ---------------------------------------------------------------------------------------------------
# 2. Warm cache: everything already built for this key.
cache_complete() {
  local entry
  [ -f "$TC_CACHE/stamp" ] && [ "$(cat "$TC_CACHE/stamp")" = "$TC_KEY" ] || return 1
  [ -x "$TC_BIN/pulumi" ] && [ -x "$TC_BIN/pulumi-language-nodejs" ] || return 1
  [ -x "$TC_BIN/pulumi-resource-pulumi-nodejs" ] || return 1
  [ "$(tc_pulumi "$TC_BIN/pulumi" version 2>/dev/null)" = "$PULUMI_VERSION" ] || return 1
  for entry in "${TC_PLUGINS[@]}"; do
    plugin_fields "$entry"
    [ -z "$P_MODVER" ] && continue
    plugin_installed "$TC_PULUMI_HOME" "$P_NAME" "$P_VERSION" || return 1
  done
}

mkdir -p "$TC_CACHE_ROOT"
step "lock the cache ($TC_CACHE_ROOT)"
exec 9>>"$TC_CACHE_ROOT/.lock"
flock -w 3600 9 || die "another toolchain run holds $TC_CACHE_ROOT/.lock for over an hour" "wait for it, or remove the lock if no such run is alive"
step_ok "locked"

if [ "$REBUILD" != 1 ] && cache_complete; then
  say "cache hit: $TC_CACHE"
  finish "$TC_BIN"
fi

# ---------------------------------------------------------------------------------------------------
# 3. Cold: build.
mkdir -p "$LOG_DIR"
WORK=$(mktemp -d "$TC_CACHE_ROOT/tmp.XXXXXX")
STAGE="$WORK/stage"
mkdir -p "$STAGE/bin"

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS=-modcacherw
# The checksum database is not reachable through the proxy for these modules: their zips are checked
# against tools/toolchain/modules.sum instead, and every dependency against the pinned go.sum files.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/pulumi,github.com/kreuzwerker"

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

step "check the build tools"
command -v go >/dev/null 2>&1 ||
  die "no 'go' on PATH" "install Go >= $TC_GO_MIN (e.g. from your distribution or go.dev/dl) and run again"
GOVER=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
version_ge "$GOVER" "$TC_GO_MIN" ||
  die "Go $GOVER is older than $TC_GO_MIN, which pulumi $PULUMI_VERSION needs (GOTOOLCHAIN=local: no automatic download)" \
    "install Go >= $TC_GO_MIN and run again"
[ "$(go env GOPROXY)" != off ] || die "GOPROXY=off: the module proxy is needed for a cold build" "unset GOPROXY or point it at a module proxy"
for t in perl patch sha256sum; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is missing" "install it (Debian: apt-get install $t)"
done
command -v node >/dev/null 2>&1 || say "warning: no 'node' on PATH; the language host needs it at run time"
step_ok "go $GOVER, GOPROXY=$(go env GOPROXY), GOMODCACHE=$(go env GOMODCACHE)"

# fetch_module MODULE VERSION: download (or find in the module cache) and check against modules.sum.
# Sets FETCHED_DIR.
fetch_module() {
  local mod=$1 ver=$2 want json got err
  want=$(awk -v m="$mod" -v v="$ver" '$1 == m && $2 == v { print $3 }' "$TC_DIR/modules.sum")
  [ -n "$want" ] || die "$mod@$ver has no pinned hash in tools/toolchain/modules.sum" \
    "add the line '$mod $ver h1:...' (the Sum that 'go mod download -json $mod@$ver' prints, checked by hand)"
  if ! json=$(cd "$WORK" && go mod download -json "$mod@$ver" 2>&1); then
    err=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p')
    die "could not download $mod@$ver: ${err:-$json}" \
      "check the network to the Go module proxy (GOPROXY=$(go env GOPROXY)); a 403/404 means the proxy does not serve that version"
  fi
  got=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')
  FETCHED_DIR=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ "$got" = "$want" ] || die "$mod@$ver has hash ${got:-?}, but modules.sum pins $want" \
    "do not build from it; find out why the proxy serves different content"
  [ -d "$FETCHED_DIR" ] || die "$mod@$ver: go reported no source directory" "run 'go mod download -json $mod@$ver' by hand"
}

# copy_module MODULE VERSION DEST: a writable copy of the module's source.
copy_module() {
  fetch_module "$1" "$2"
  cp -R "$FETCHED_DIR" "$3"
  chmod -R u+w "$3"
}

step "fetch and verify pulumi $PULUMI_VERSION sources (pkg, sdk)"
mkdir -p "$WORK/pulumi"
copy_module "$PULUMI_PKG_MODULE" "$PULUMI_VERSION" "$WORK/pulumi/pkg"
copy_module "$PULUMI_SDK_MODULE" "$PULUMI_VERSION" "$WORK/pulumi/sdk"
step_ok "upstream layout in $WORK/pulumi (pkg/go.mod: sdk => ../sdk)"

PULUMI_LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"

step "build pulumi $PULUMI_VERSION (cold: module downloads plus a few minutes of compiling)"
run_logged build-pulumi go -C "$WORK/pulumi/pkg" build -mod=readonly -trimpath -buildvcs=false \
  -tags osusergo,grpcnotrace -ldflags "$PULUMI_LDFLAGS" -o "$STAGE/bin/pulumi" ./cmd/pulumi ||
  die "go build of ./cmd/pulumi failed (log: $LOG_DIR/build-pulumi.log)" \
    "read the log: a download error means the module proxy lacks a dependency; a compile error, a Go version problem"
got=$("$STAGE/bin/pulumi" version 2>&1 || true)
[ "$got" = "$PULUMI_VERSION" ] || die "the built pulumi reports '$got', not $PULUMI_VERSION" "check the -ldflags in tools/toolchain.sh"
# The dynamic-provider plugin that ships beside the CLI in Pulumi's own distribution (a shell script
# in the sdk module that runs @pulumi/pulumi/cmd/dynamic-provider): dynamic resources need it; this
# program has none any more, but the migration drill runs the previous main, whose resources were.
install -m 0755 "$WORK/pulumi/sdk/nodejs/dist/pulumi-resource-pulumi-nodejs" "$STAGE/bin/" ||
  die "the sdk module has no nodejs/dist/pulumi-resource-pulumi-nodejs" "check the sdk version in pins.env"
step_ok "pulumi version = $got (+ pulumi-resource-pulumi-nodejs)"

step "build pulumi-language-nodejs (sdk $LANGHOST_SDK_VERSION + tools/toolchain/langhost/patches)"
mkdir -p "$WORK/langhost"
cp "$TC_DIR/langhost/go.mod" "$TC_DIR/langhost/go.sum" "$TC_DIR/langhost/tools.go" "$WORK/langhost/"
copy_module "$PULUMI_SDK_MODULE" "$LANGHOST_SDK_VERSION" "$WORK/langhost/sdk"
for p in "$TC_DIR"/langhost/patches/*.patch; do
  run_logged langhost-patch patch -p1 --forward -d "$WORK/langhost/sdk" -i "$p" ||
    die "patch $(basename "$p") does not apply to sdk $LANGHOST_SDK_VERSION" "update the patch"
done
run_logged build-langhost go -C "$WORK/langhost" build -mod=readonly -trimpath -buildvcs=false \
  -tags osusergo,grpcnotrace \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_SDK_VERSION" \
  -o "$STAGE/bin/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs ||
  die "go build of pulumi-language-nodejs failed (log: $LOG_DIR/build-langhost.log)" \
    "read the log; tools/toolchain/langhost/go.sum pins every dependency"
step_ok "$(du -h "$STAGE/bin/pulumi-language-nodejs" | cut -f1) binary"

for entry in "${TC_PLUGINS[@]}"; do
  plugin_fields "$entry"
  [ -z "$P_MODVER" ] && continue
  step "build resource plugin $P_NAME $P_VERSION ($P_MODULE@$P_MODVER)"
  src="$WORK/plugin-$P_NAME"
  mkdir -p "$src" "$STAGE/plugins"
  copy_module "$P_MODULE" "$P_MODVER" "$src/provider"
  PLUGIN_TAGS=""
  PLUGIN_LDFLAGS=""
  if declare -F "plugin_prepare_$P_NAME" >/dev/null; then "plugin_prepare_$P_NAME" "$src" "$P_VERSION"; fi
  run_logged "build-$P_NAME" go -C "$src/provider" build -mod=readonly -trimpath -buildvcs=false \
    -tags "$PLUGIN_TAGS" -ldflags "-s -w -X $P_LDVAR=$P_VERSION $PLUGIN_LDFLAGS" \
    -o "$STAGE/plugins/pulumi-resource-$P_NAME" "$P_PKG" ||
    die "go build of $P_PKG failed (log: $LOG_DIR/build-$P_NAME.log)" "read the log"
  step_ok "$(du -h "$STAGE/plugins/pulumi-resource-$P_NAME" | cut -f1) binary"
done

# ---------------------------------------------------------------------------------------------------
# 4. Install: everything above was built in WORK; only now does anything move into the cache.
step "install into $TC_CACHE"
INSTALLING=1
mkdir -p "$TC_CACHE"
rm -f "$TC_CACHE/stamp"
if [ -d "$TC_BIN" ]; then mv "$TC_BIN" "$WORK/old-bin"; fi
mv "$STAGE/bin" "$TC_BIN"
for entry in "${TC_PLUGINS[@]}"; do
  plugin_fields "$entry"
  [ -z "$P_MODVER" ] && continue
  pdir="$TC_PULUMI_HOME/plugins/resource-$P_NAME-v$P_VERSION"
  if ! run_logged "install-$P_NAME" tc_pulumi "$TC_BIN/pulumi" plugin install resource "$P_NAME" "$P_VERSION" \
    --file "$STAGE/plugins/pulumi-resource-$P_NAME" --reinstall; then
    rm -rf "$pdir" "$pdir.partial" "$pdir.lock"
    die "pulumi plugin install of $P_NAME $P_VERSION failed (log: $LOG_DIR/install-$P_NAME.log)" "read the log"
  fi
  plugin_installed "$TC_PULUMI_HOME" "$P_NAME" "$P_VERSION" || {
    rm -rf "$pdir" "$pdir.partial" "$pdir.lock"
    die "$P_NAME $P_VERSION is not complete in $TC_PULUMI_HOME/plugins after installing" "read $LOG_DIR/install-$P_NAME.log"
  }
done
printf '%s\n' "$TC_KEY" >"$TC_CACHE/stamp"
step_ok "$(du -sh "$TC_CACHE" | cut -f1) in $TC_CACHE"

finish "$TC_BIN"
