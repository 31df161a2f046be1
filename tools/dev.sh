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
# The program and its provider plugin run compiled ahead (Pulumi.yaml typescript: false).
npm run --silent build
# --refresh: the lab may have been rebuilt since the last up (lab:down, npm test); what is gone is made again.
pulumi up --stack dev --yes --refresh "$@"

echo
npx tsx lab/cli.ts status || true
echo
pulumi stack output --stack dev
