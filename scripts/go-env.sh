# Sourced by the project's scripts: puts a Go toolchain on PATH.
# Uses `go` from PATH or /usr/local/go; otherwise installs Debian's golang-go,
# which (Go 1.21 or later) fetches the version go.mod names through the Go
# module proxy by itself (GOTOOLCHAIN=auto).
if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  else
    echo "go-env: no Go toolchain; installing Debian's golang-go" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO=sudo; fi
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q golang-go >/dev/null
  fi
fi
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
export PATH=$PATH:$(go env GOPATH)/bin
if ! go version >/dev/null 2>&1; then
  echo "go-env: this Go cannot build the project (it needs Go 1.21+ to fetch the toolchain go.mod names)" >&2
  exit 1
fi
