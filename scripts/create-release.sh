#!/usr/bin/env bash
# Creates a dev release tarball of the CPI (default build/release.tgz):
#   1. builds the bosh CLI (scripts/bosh-cli.sh),
#   2. turns the Go toolchain module the Go proxy serves into the
#      golang-1-linux blob (a reproducible go<version>.linux-amd64.tar.gz,
#      laid out like the tarball on go.dev),
#   3. stages the package's sources and vendored modules into src/
#      (scripts/vendor-release.sh),
#   4. runs bosh create-release --force.
# Usage: scripts/create-release.sh [TARBALL]
#   GO_VERSION   the Go toolchain to package (at least go.mod's go line)
#   RELEASE_DIR  build in this directory instead of the repository (tests do,
#                so that blobs, src/ and dev builds stay out of the tree);
#                jobs/, packages/ and config/ are copied there first
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tarball=$(realpath -m "${1:-${root}/build/release.tgz}")
release_dir=$(realpath -m "${RELEASE_DIR:-$root}")
GO_VERSION=${GO_VERSION:-1.26.8}

log() { echo "create-release.sh: $*" >&2; }

# A GOROOT from golang.org/toolchain, made runnable the way the go command
# does it when it switches toolchains: module zips carry no executable bits
# and cannot hold nested go.mod files (they are stored as _go.mod).
stage_goroot() {
  local module_dir=$1 goroot=$2
  rm -rf "$goroot"
  mkdir -p "$goroot"
  cp -a "$module_dir/." "$goroot/"
  chmod -R u+w "$goroot"
  find "$goroot" -name _go.mod -execdir cp _go.mod go.mod \;
  chmod -R a+x "$goroot/bin" "$goroot/pkg/tool"
  find "$goroot/lib" -name 'go_*_*_exec' -exec chmod a+x {} +
}

# Same bytes for the same toolchain on every machine, so config/blobs.yml
# only changes when the Go version does.
reproducible_tgz() {
  local dir=$1 out=$2
  tar -C "$(dirname "$dir")" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime=@0 -cf - "$(basename "$dir")" | gzip -n -6 > "$out"
}

golang_blob() {
  local module="golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-amd64"
  local work="${root}/build/golang"
  local blob="${work}/go${GO_VERSION}.linux-amd64.tar.gz"
  if [ ! -s "$blob" ]; then
    log "making ${blob} from ${module}"
    local module_dir
    module_dir=$(cd "$root" && go mod download -json "$module" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$module_dir" ] || { log "go mod download ${module} gave no directory"; exit 1; }
    stage_goroot "$module_dir" "${work}/go"
    "${work}/go/bin/go" version >&2
    reproducible_tgz "${work}/go" "${blob}.tmp"
    mv "${blob}.tmp" "$blob"
    rm -rf "${work}/go"
  fi
  echo "$blob"
}

# Registers the blob, dropping any other toolchain version left in blobs.yml.
add_golang_blob() {
  local bosh=$1 blob=$2
  local name="golang-1-linux/$(basename "$blob")"
  local old
  for old in $("$bosh" blobs --column=path 2>/dev/null | awk '/^golang-1-linux\//{print $1}'); do
    [ "$old" = "$name" ] || "$bosh" remove-blob "$old" >&2
  done
  "$bosh" add-blob "$blob" "$name" >&2
}

copy_release_skeleton() {
  [ "$release_dir" = "$root" ] && return
  mkdir -p "$release_dir"
  cp -a "$root/jobs" "$root/packages" "$root/config" "$release_dir/"
}

main() {
  local bosh blob
  bosh=$("$root/scripts/bosh-cli.sh")
  blob=$(golang_blob)
  copy_release_skeleton
  cd "$release_dir"
  add_golang_blob "$bosh" "$blob"
  RELEASE_DIR="$release_dir" "$root/scripts/vendor-release.sh"
  mkdir -p "$(dirname "$tarball")"
  "$bosh" create-release --force --tarball "$tarball"
  log "release tarball: ${tarball}"
}

main "$@"
