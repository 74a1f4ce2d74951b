#!/usr/bin/env bash
# Prints the CPI's speed figures on this machine next to their targets.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
. scripts/go-env.sh
scripts/host.sh with bash -c 'make test-stemcell && go run ./cmd/bench "$@"' bench "$@"
