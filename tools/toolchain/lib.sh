# shellcheck shell=bash disable=SC2034  # variables are used by the files that source this one
# Shared by tools/toolchain.sh and tools/env.sh: where the pinned toolchain lives.
#
# toolchain_paths REPO sets:
#   TC_DIR          REPO/tools/toolchain (pins, wrapper module, patches)
#   TC_CACHE_ROOT   $DCCN_TOOLCHAIN_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/dccn-swarm/toolchain
#   TC_KEY          pulumi-<version>-<os>-<arch>-<hash of every pinned input under TC_DIR>
#   TC_CACHE        TC_CACHE_ROOT/TC_KEY
#   TC_BIN          TC_CACHE/bin: pulumi and pulumi-language-nodejs, side by side
#   TC_PULUMI_HOME  TC_CACHE/pulumi-home: the plugin cache (PULUMI_HOME) that goes with TC_BIN
# plus everything tools/toolchain/pins.env defines.

toolchain_inputs_hash() {
  # Every file under tools/toolchain except documentation, in a fixed order.
  (
    cd "$1" || exit 1
    find . -type f ! -name '*.md' -print | LC_ALL=C sort | while IFS= read -r f; do
      printf '%s\n' "$f"
      cat "$f"
    done
  ) | sha256sum | cut -c1-12
}

toolchain_paths() {
  TC_DIR="$1/tools/toolchain"
  # shellcheck source=tools/toolchain/pins.env
  . "$TC_DIR/pins.env"
  TC_CACHE_ROOT="${DCCN_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dccn-swarm/toolchain}"
  TC_KEY="pulumi-${PULUMI_VERSION}-$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)-$(toolchain_inputs_hash "$TC_DIR")"
  TC_CACHE="$TC_CACHE_ROOT/$TC_KEY"
  TC_BIN="$TC_CACHE/bin"
  TC_PULUMI_HOME="$TC_CACHE/pulumi-home"
}
