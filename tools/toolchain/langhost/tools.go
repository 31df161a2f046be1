//go:build tools

// Package langhost pins the Node.js language host that tools/toolchain.sh builds. The host's source
// is the pulumi-language-nodejs package of github.com/pulumi/pulumi/sdk/v3 (see go.mod), copied from
// the module cache into a scratch directory and patched there; nothing of it is kept in this repo.
package langhost

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
