#!/usr/bin/env bash
# Builds the bosh CLI the release tooling and tests use into build/bosh (once)
# and prints its path. The version is pinned in tools/bosh-cli/go.mod, a module
# of its own so that the CPI's go.mod never carries the CLI's dependencies.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bosh="${root}/build/bosh"
tools="${root}/tools/bosh-cli"

cli_version() {
  (cd "$tools" && go list -m -f '{{.Version}}' github.com/cloudfoundry/bosh-cli/v7)
}

if [ ! -x "$bosh" ] || [ "$tools/go.mod" -nt "$bosh" ]; then
  version=$(cli_version)
  echo "bosh-cli.sh: building bosh CLI ${version} into ${bosh}" >&2
  mkdir -p "${root}/build"
  (cd "$tools" && go build -trimpath \
    -ldflags "-X github.com/cloudfoundry/bosh-cli/v7/cmd.VersionLabel=${version#v}" \
    -o "$bosh" github.com/cloudfoundry/bosh-cli/v7)
fi
echo "$bosh"
