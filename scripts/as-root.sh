# Sourced first by the scripts that install packages and start daemons:
# they run as root. Root runs on (a minimal image may have no sudo); any
# other user is re-run through sudo with the same arguments.
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=CI,GOFLAGS,GOPROXY,BOSH_LIBVIRT_CPI_URI "$0" "$@"
  fi
  echo "$(basename "$0"): needs root (it installs packages and starts libvirtd); run it as root, or install sudo" >&2
  exit 1
fi
