#!/usr/bin/env bash
# The project's test command: every unit test, then the suites that drive
# the built CPI against a real libvirtd + QEMU (and dockerd), which this
# script installs and starts itself and stops at the end.
#   sudo scripts/test.sh            everything
#   sudo scripts/test.sh -short     unit tests and the integration suite, no guest boots
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/go-env.sh

scripts/host.sh install
trap 'scripts/host.sh stop' EXIT
scripts/host.sh start
export BOSH_LIBVIRT_CPI_URI=${BOSH_LIBVIRT_CPI_URI:-qemu:///system}

echo "== test stemcell"
make test-stemcell
echo "== go vet"
go vet ./...
echo "== tests"
# -p 1: suites share one libvirtd and two cores; running them one package
# at a time keeps guest boots under TCG from starving each other.
go test -p 1 -count=1 -timeout 60m "$@" ./...
