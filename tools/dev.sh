#!/usr/bin/env bash
# dev.sh - the main job, as `npm run dev` runs it: the engine (built once), the lab, then
# `pulumi up --stack dev` on it, and a summary of what runs where.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/prereqs.sh
bash tools/toolchain.sh --allow-missing-plugins
# shellcheck source=/dev/null
source tools/env.sh
npx tsx lab/cli.ts up

bash tools/stack-init.sh dev
pulumi up --stack dev --yes --skip-preview=false "$@"

echo
npx tsx lab/cli.ts status || true
echo
pulumi stack output --stack dev
