# shellcheck shell=bash
# Source me from bash (`. tools/env.sh`): the pinned Pulumi toolchain and local-only Pulumi state.
#   PATH                                  the toolchain's bin first (pulumi, pulumi-language-nodejs)
#   PULUMI_HOME                           the plugin cache that goes with it
#   PULUMI_BACKEND_URL                    file://<repo>/.state/pulumi (no Pulumi Cloud; .state/pulumi-NAME with LAB_NAME)
#   PULUMI_CONFIG_PASSPHRASE_FILE         <repo>/.state/passphrase (random, mode 600, made if missing)
#   PULUMI_SKIP_UPDATE_CHECK              true
#   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION  true
# Paths come from tools/toolchain/lib.sh (the same cache key tools/toolchain.sh builds), or from
# .state/toolchain.env when tools/toolchain.sh chose an already installed pulumi. Run
# `npm run toolchain` first; sourcing this file builds nothing.

_dccn_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tools/toolchain/lib.sh disable=SC1091
. "$_dccn_repo/tools/toolchain/lib.sh"
toolchain_paths "$_dccn_repo"
if [ -f "$_dccn_repo/.state/toolchain.env" ]; then
  # shellcheck source=/dev/null
  . "$_dccn_repo/.state/toolchain.env"
fi

# TC_BIN first on PATH, exactly once.
_dccn_path=":$PATH:"
_dccn_path=${_dccn_path//:"$TC_BIN":/:}
_dccn_path=${_dccn_path#:}
PATH="$TC_BIN${_dccn_path:+:${_dccn_path%:}}"
export PATH
export PULUMI_HOME="$TC_PULUMI_HOME"

# A lab instance (LAB_NAME, lab/README.md "Lab instances") keeps its dev stack in a backend of its own,
# so that every tool (pulumi, npm run ops, npm run status) run with LAB_NAME acts on that lab's stack.
_dccn_backend="$_dccn_repo/.state/pulumi"
if [ -n "${LAB_NAME:-}" ] && [ "$LAB_NAME" != default ]; then
  if ! [[ "$LAB_NAME" =~ ^[a-z][a-z0-9]{0,9}$ ]]; then
    echo "tools/env.sh: LAB_NAME must be 1 to 10 lower-case letters and digits starting with a letter (e.g. lab26)" >&2
    return 2
  fi
  _dccn_backend="$_dccn_repo/.state/pulumi-$LAB_NAME"
fi
mkdir -p "$_dccn_backend"
if [ ! -s "$_dccn_repo/.state/passphrase" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 >"$_dccn_repo/.state/passphrase")
fi
chmod 600 "$_dccn_repo/.state/passphrase"
export PULUMI_BACKEND_URL="file://$_dccn_backend"
export PULUMI_CONFIG_PASSPHRASE_FILE="$_dccn_repo/.state/passphrase"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export DCCN_TOOLCHAIN_BIN="$TC_BIN"

unset _dccn_repo _dccn_path
