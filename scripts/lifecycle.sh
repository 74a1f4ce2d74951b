#!/usr/bin/env bash
# The project's main job: a full CPI lifecycle (stemcell, VM, metadata, disk,
# reboot, snapshot, delete) against the local libvirt, as a director drives
# it. Installs and starts what it needs; stops what it started.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
. scripts/go-env.sh
scripts/host.sh with bash -c 'make test-stemcell && go run ./cmd/lifecycle "$@"' lifecycle "$@"
