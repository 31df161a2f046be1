#!/usr/bin/env bash
# stack-init.sh STACK - select (creating if needed) a stack in the local file backend.
#
# The passphrase secrets provider keeps the stack's salt both in the backend's state and, as
# `encryptionsalt:`, in Pulumi.<stack>.yaml. The passphrase is per machine (.state/passphrase), so a
# salt in the stack file that belongs to no local state is stale (copied from another machine):
# it is dropped here, and Pulumi writes this machine's salt back. Never commit that line.
# For the dev stack (the lab), every user in `registry.users` without a readable password in the
# secret map `registryPasswords` gets a new random one, set with `pulumi config set --secret` from
# standard input (never on a command line). It lands in Pulumi.dev.yaml, encrypted with this
# machine's passphrase: like the salt, never commit those lines. A value from another machine (it
# cannot be decrypted here) is replaced the same way. So is every secret config value a stack's
# `overrides.externalSecrets` names ({ config: KEY }), such as the webapp's database passwords.
# Expects tools/env.sh to have been sourced.
set -euo pipefail
stack=${1:?usage: stack-init.sh STACK}
cd "$(dirname "$0")/.."
state="${PULUMI_BACKEND_URL#file://}/.pulumi/stacks/dccn-swarm/${stack}.json"
if [ ! -f "$state" ] && grep -q '^encryptionsalt:' "Pulumi.${stack}.yaml" 2>/dev/null; then
  sed -i '/^encryptionsalt:/d' "Pulumi.${stack}.yaml"
fi
pulumi stack select --create "$stack" >/dev/null

# ensure_secret WHAT KEY-ARGS...: unless the dev config has a readable value for KEY-ARGS (a key,
# or --path and a path), set a random one as a secret, from standard input.
ensure_secret() {
  local what=$1
  shift
  pulumi config get --stack dev "$@" >/dev/null 2>&1 && return 0
  head -c 24 /dev/urandom | base64 | tr -d '/+=\n' | pulumi config set --stack dev --secret "$@"
  echo "stack-init: generated ${what} (pulumi config get --stack dev $*)" >&2
}

if [ "$stack" = dev ]; then
  users=$(pulumi config get --stack dev --path registry.users 2>/dev/null || true)
  for user in $(printf '%s' "$users" | tr -d '[]"' | tr ',' ' '); do
    ensure_secret "a password for the lab registry's user ${user}" --path "registryPasswords.${user}"
  done
  keys=$(pulumi config get --stack dev stacks 2>/dev/null | node -e '
    let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => {
      const keys = new Set();
      for (const s of t.trim() ? JSON.parse(t) : []) {
        for (const v of Object.values(s?.overrides?.externalSecrets ?? {})) if (typeof v?.config === "string") keys.add(v.config);
      }
      console.log([...keys].join(" "));
    });' || true)
  for key in $keys; do
    ensure_secret "the lab's secret config value ${key}" "$key"
  done
fi
