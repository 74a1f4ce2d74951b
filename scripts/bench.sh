#!/usr/bin/env bash
# Prints the CPI's speed figures on this machine next to their targets.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
. scripts/go-env.sh
# The LXC figures need the private lxc libvirtd (scripts/lxc-host.sh).
scripts/host.sh with bash -c 'make test-stemcell && scripts/lxc-host.sh run go run ./cmd/bench "$@"' bench "$@"
