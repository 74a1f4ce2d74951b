#!/usr/bin/env bash
# Stages the libvirt_cpi package's sources into RELEASE_DIR/src (default: the
# repository root's src/), where bosh create-release looks for package files:
#   src/go.mod, src/go.sum      the module files
#   src/<dir>/*.go ...          exactly the files `go list -deps ./cmd/cpi`
#                               compiles from this module (plus embedded files)
#   src/vendor/                 every dependency, so the package compiles
#                               offline with -mod=vendor
# Why a copy and not symlinks: bosh packages a file reached through a symlinked
# directory only when the symlink is src/ itself, and a src/ linked to the root
# makes it drop every package's packaging script; symlinked files end up in
# the package as dangling links. src/ is generated, never committed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
release_dir=$(realpath -m "${RELEASE_DIR:-$root}")
src="${release_dir}/src"

log() { echo "vendor-release.sh: $*" >&2; }

# Paths, relative to the module root, of every file of this module that the
# CPI binary is compiled from (for linux/amd64, the release's only platform).
module_sources() {
  (cd "$root" && GOOS=linux GOARCH=amd64 go list -deps \
    -f '{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .SFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}' ./cmd/cpi) | sed "s|^${root}/||" | sort -u
}

main() {
  local files
  files=$(module_sources)
  [ -n "$files" ] || { log "go list found no sources for ./cmd/cpi"; exit 1; }

  rm -rf "$src"
  mkdir -p "$src"
  (cd "$root" && cp --parents go.mod go.sum $files "$src/")
  (cd "$root" && go mod vendor -o "$src/vendor")
  log "staged $(echo "$files" | wc -l) source files and $(grep -c '^# ' "$src/vendor/modules.txt") vendored modules into ${src}"
}

main "$@"
