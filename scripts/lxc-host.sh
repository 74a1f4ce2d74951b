#!/usr/bin/env bash
# Runs CMD beside a private libvirtd with the lxc driver:
#   scripts/lxc-host.sh run CMD...
# This kind of host (cgroup v1 with an empty cgroup2 at
# /sys/fs/cgroup/unified) makes the lxc driver fail every start with
# "Unable to create directory /sys/fs/cgroup/unified". So libvirtd runs in
# mount and network namespaces of its own, where that mount is unmounted;
# scratch directories are bind-mounted over libvirt's state and config
# directories (nothing collides with the machine's libvirtd), and the
# containers' NICs and bridges exist only in that network namespace.
# The CPI mounts each container's root (an overlay) in the CPI's own mount
# namespace: the store directory is made a shared mount before libvirtd's
# namespace is made (as a slave copy), so those mounts reach libvirtd, as
# they would on a systemd host, where every mount is shared.
# CMD gets BOSH_LIBVIRT_CPI_LXC_URI (lxc+unix:///system?socket=...) and
# BOSH_LIBVIRT_CPI_LXC_STORE (the shared store directory to use as
# store_dir). On exit every domain is destroyed, both daemons are stopped
# by their pids and the scratch directory is removed.
set -euo pipefail

die() { echo "lxc-host.sh: $*" >&2; exit 1; }

inside() { # scratch: runs in the new namespaces; starts the daemons and returns
  local scratch=$1 dir
  ip link set lo up
  if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
  for dir in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
    mkdir -p "$scratch/ns$dir"
  done
  find /etc/libvirt -maxdepth 1 -type f -exec cp {} "$scratch/ns/etc/libvirt/" \;
  mkdir -p "$scratch/ns/var/lib/libvirt/"{images,dnsmasq,lxc,network} "$scratch/ns/var/log/libvirt/lxc"
  for dir in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
    mount --bind "$scratch/ns$dir" "$dir"
  done
  echo 'unix_sock_dir = "/run/libvirt"' >>/etc/libvirt/libvirtd.conf
  virtlogd -d -p /run/libvirt/virtlogd.pid
  libvirtd -d -p /run/libvirt/libvirtd.pid
}

run() {
  [ -x /usr/lib/libvirt/libvirt_lxc ] || die "libvirt's lxc driver is missing: scripts/host.sh install installs libvirt-daemon-driver-lxc"
  # Short: libvirt loop-mounts only disk images whose path fits in 63
  # bytes. Globals: the EXIT trap runs after this function has returned.
  scratch=$(mktemp -d /var/tmp/lxc-cpi.XXXXXX)
  store=$scratch/store
  uri="lxc+unix:///system?socket=$scratch/ns/run/libvirt/libvirt-sock"
  mkdir -p "$store"
  mount --bind "$store" "$store"
  mount --make-shared "$store"
  cleanup() {
    local dom pidfile pid
    for dom in $(virsh -c "$uri" list --all --name 2>/dev/null); do
      virsh -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
      virsh -c "$uri" undefine "$dom" >/dev/null 2>&1 || true
    done
    for pidfile in "$scratch/ns/run/libvirt/libvirtd.pid" "$scratch/ns/run/libvirt/virtlogd.pid"; do
      pid=$(cat "$pidfile" 2>/dev/null) && kill "$pid" 2>/dev/null || true
    done
    # Overlays of containers a killed test left, then the store itself.
    { grep -o " $store/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount "$m" || true; done
    umount "$store" 2>/dev/null || true
    mountpoint -q "$store" || rm -rf "$scratch"
  }
  trap cleanup EXIT
  unshare --mount --net --propagation slave "$0" inside "$scratch"
  for _ in $(seq 1 60); do
    virsh -c "$uri" version >/dev/null 2>&1 && break
    sleep 0.5
  done
  virsh -c "$uri" version >/dev/null || die "private lxc libvirtd did not answer at $uri within 30 s"
  BOSH_LIBVIRT_CPI_LXC_URI=$uri BOSH_LIBVIRT_CPI_LXC_STORE=$store "$@"
}

case "${1:-}" in
  run) shift; run "$@" ;;
  inside) inside "$2" ;;
  *) die "usage: $0 run CMD..." ;;
esac
