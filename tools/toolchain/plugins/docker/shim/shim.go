// Package shim exposes the Terraform Docker provider to pulumi-docker's bridge, which imports
// github.com/terraform-providers/terraform-provider-docker/shim. Upstream keeps the provider in an
// internal package, so this file is copied into the upstream tree by tools/toolchain/plugins/docker.sh
// before the build. Written for dccn-swarm.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"

	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// upstreamVersion is set at link time:
// -X github.com/terraform-providers/terraform-provider-docker/shim.upstreamVersion=<version>
var upstreamVersion = "dev"

// NewProvider returns the upstream provider, configured with the upstream version it was built from.
func NewProvider() *schema.Provider {
	return provider.New(upstreamVersion)()
}
