# shellcheck shell=bash disable=SC2034  # variables are used by the files that source this one
# Sourced by tools/toolchain.sh. Prepares the pulumi-docker source tree for `go build`.
# Not exercised yet: the docker plugin is BLOCKED until pins.env pins served module versions (README.md).
#
# plugin_prepare_docker SRC PLUGIN_VERSION
#   SRC/provider holds a writable copy of github.com/pulumi/pulumi-docker/provider/v5. This rebuilds
#   the upstream layout next to it (SRC/upstream, which provider/go.mod's replace points at) and applies
#   the source changes of ours that pulumi-docker otherwise keeps as patches outside any module zip.
#   Sets PLUGIN_TAGS and PLUGIN_LDFLAGS for the build.

plugin_prepare_docker() {
  local src=$1 pver=$2 up f
  [ -n "${DOCKER_UPSTREAM_VERSION:-}" ] ||
    die "no pinned version of $DOCKER_UPSTREAM_MODULE (DOCKER_UPSTREAM_VERSION in tools/toolchain/pins.env)" \
      "pin the pseudo-version of kreuzwerker's v${DOCKER_UPSTREAM_LABEL} commit and its h1: hash in modules.sum"

  fetch_module "$DOCKER_UPSTREAM_MODULE" "$DOCKER_UPSTREAM_VERSION"
  up="$src/upstream"
  cp -R "$FETCHED_DIR" "$up"
  chmod -R u+w "$up"

  # 1. The bridge imports .../terraform-provider-docker/shim; upstream has no such package.
  mkdir -p "$up/shim"
  cp "$TC_DIR/plugins/docker/shim/shim.go" "$up/shim/shim.go"

  # 2. Service mode: `global` must not default to false, or it conflicts with `replicated`
  #    (pulumi-docker #266/#401).
  f="$up/internal/provider/resource_docker_service.go"
  perl -0pi -e 's/("global":\s*\{\s*\n\s*Type:\s*schema\.TypeBool,\s*\n(?:[ \t]*Description:[^\n]*\n)?)[ \t]*Default:\s*false,[ \t]*\n/$1/ or die "pattern not found\n"' "$f" ||
    die "could not drop the default of the service 'global' field in $f" "the upstream source changed: update tools/toolchain/plugins/docker.sh"

  # 3. Registry calls must not replace http.DefaultClient's transport (process-wide, and with an empty
  #    TLS config): give them a client of their own.
  f="$up/internal/provider/resource_docker_registry_image_funcs.go"
  perl -0pi -e 's/client := http\.DefaultClient\n/client := &http.Client{}\n/ or die "pattern not found\n"' "$f" ||
    die "could not give the registry helper its own HTTP client in $f" "the upstream source changed: update tools/toolchain/plugins/docker.sh"

  # 4. main.go embeds schema-embed.json, which is generated from the shipped schema.json.
  (cd "$src/provider/cmd/pulumi-resource-docker" && VERSION="$pver" go run -mod=readonly generate.go) \
    >"$LOG_DIR/docker-generate.log" 2>&1 ||
    die "generating schema-embed.json failed (log: $LOG_DIR/docker-generate.log)" "read the log; the generator is provider/cmd/pulumi-resource-docker/generate.go"

  PLUGIN_TAGS=no_compose
  PLUGIN_LDFLAGS="-X github.com/terraform-providers/terraform-provider-docker/shim.upstreamVersion=${DOCKER_UPSTREAM_LABEL}"
}
