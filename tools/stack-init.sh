#!/usr/bin/env bash
# stack-init.sh STACK - select (creating if needed) a stack in the local file backend.
#
# The passphrase secrets provider keeps the stack's salt both in the backend's state and, as
# `encryptionsalt:`, in Pulumi.<stack>.yaml. The passphrase is per machine (.state/passphrase), so a
# salt in the stack file that belongs to no local state is stale (copied from another machine):
# it is dropped here, and Pulumi writes this machine's salt back. Never commit that line.
# Expects tools/env.sh to have been sourced.
set -euo pipefail
stack=${1:?usage: stack-init.sh STACK}
cd "$(dirname "$0")/.."
state="${PULUMI_BACKEND_URL#file://}/.pulumi/stacks/dccn-swarm/${stack}.json"
if [ ! -f "$state" ] && grep -q '^encryptionsalt:' "Pulumi.${stack}.yaml" 2>/dev/null; then
  sed -i '/^encryptionsalt:/d' "Pulumi.${stack}.yaml"
fi
pulumi stack select --create "$stack" >/dev/null
