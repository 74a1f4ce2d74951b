#!/usr/bin/env bash
# Prepares a Debian/Ubuntu host for the CPI and its tests, without systemd:
#   scripts/host.sh install   apt-get install what is missing (retries once,
#                             dpkg sometimes stops with "failed to read archive")
#   scripts/host.sh start     start virtlogd, libvirtd (and dockerd) unless they
#                             already answer; records what it started
#   scripts/host.sh stop      stop only what 'start' started
#   scripts/host.sh with CMD  install, start, run CMD, then stop what this run
#                             started (never daemons an earlier start left running)
# State lives in $BOSH_LIBVIRT_CPI_RUN (default /run/bosh-libvirt-cpi-host).
set -euo pipefail

RUN_DIR=${BOSH_LIBVIRT_CPI_RUN:-/run/bosh-libvirt-cpi-host}
# The pid files of what was started: 'start' and 'stop' share one list; a
# 'with' run keeps its own, so it stops only what it started itself.
STARTED=$RUN_DIR/started
PACKAGES=(libvirt-daemon-system libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils
  libvirt-daemon-driver-lxc
  ruby docker.io linux-image-amd64 busybox-static e2fsprogs mount kmod cpio
  syslinux syslinux-common syslinux-efi ovmf mtools fdisk dosfstools zstd util-linux
  ca-certificates curl git make libxml2-utils debootstrap)

# Only the tests need sshd (the remote qemu+ssh:// tests start one privately
# on loopback); the test command sets BOSH_LIBVIRT_CPI_TESTS=1. Installed
# with its service kept from starting: it would listen on port 22.
QUIET_PACKAGES=()
if [ "${BOSH_LIBVIRT_CPI_TESTS:-}" = 1 ]; then
  QUIET_PACKAGES=(openssh-server)
fi

log() { echo "host.sh: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages() { # package...
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install() {
  local missing quiet
  missing=$(missing_packages "${PACKAGES[@]}" | tr '\n' ' ')
  quiet=$(missing_packages "${QUIET_PACKAGES[@]}" | tr '\n' ' ')
  if [ -z "${missing// }${quiet// }" ]; then
    log "all packages present"
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >/dev/null
  if [ -n "${missing// }" ]; then
    log "installing: $missing"
    apt_install $missing
  fi
  if [ -n "${quiet// }" ]; then
    log "installing, its service not started: $quiet"
    without_service_starts apt_install $quiet
  fi
}

apt_install() { # package...
  as_root apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
    as_root apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# Runs CMD with a policy-rc.d that denies service starts (invoke-rc.d and
# deb-systemd-invoke ask it), unless the host has a policy-rc.d of its own.
without_service_starts() { # cmd...
  local policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    "$@"
    return
  fi
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
  local rc=0
  "$@" || rc=$?
  as_root rm -f "$policy"
  return "$rc"
}

# Without systemd there is no polkit: the daemon host.sh starts admits root
# and the 'libvirt' group through the socket's owner and mode instead, so a
# user in that group can use qemu:///system (libvirt's own scheme for
# hosts without polkit).
write_libvirtd_conf() {
  as_root groupadd -f libvirt
  cat >"$RUN_DIR/libvirtd.conf" <<'CONF'
unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
CONF
}

libvirt_answers() { timeout 10 virsh -c qemu:///system version >/dev/null 2>&1; }
docker_answers() { timeout 10 docker version >/dev/null 2>&1; }

start_daemon() { # name pidfile command...
  local name=$1 pidfile=$2
  shift 2
  log "starting $name"
  as_root "$@"
  for _ in $(seq 1 50); do
    [ -s "$pidfile" ] && break
    sleep 0.1
  done
  [ -s "$pidfile" ] || { log "$name did not write $pidfile"; return 1; }
  echo "$pidfile" >>"$STARTED"
}

start() {
  as_root mkdir -p "$RUN_DIR" /var/run/libvirt /var/lib/libvirt/qemu
  touch "$STARTED"
  if ! libvirt_answers; then
    # The system virtlogd is there when its socket is: a user's session
    # virtlogd (started by qemu:///session) is a process of the same name.
    if [ ! -S /var/run/libvirt/virtlogd-sock ]; then
      start_daemon virtlogd "$RUN_DIR/virtlogd.pid" virtlogd -d -p "$RUN_DIR/virtlogd.pid"
    fi
    write_libvirtd_conf
    start_daemon libvirtd "$RUN_DIR/libvirtd.pid" libvirtd -d -f "$RUN_DIR/libvirtd.conf" -p "$RUN_DIR/libvirtd.pid"
    for _ in $(seq 1 100); do libvirt_answers && break; sleep 0.2; done
    libvirt_answers || { log "libvirtd does not answer at qemu:///system"; exit 1; }
  fi
  if ! docker_answers; then
    log "starting dockerd"
    as_root sh -c "dockerd -p '$RUN_DIR/dockerd.pid' >'$RUN_DIR/dockerd.log' 2>&1 &"
    for _ in $(seq 1 150); do docker_answers && break; sleep 0.2; done
    docker_answers || { log "dockerd does not answer; see $RUN_DIR/dockerd.log"; exit 1; }
    echo "$RUN_DIR/dockerd.pid" >>"$STARTED"
  fi
  log "libvirtd and dockerd answer"
}

stop() {
  [ -f "$STARTED" ] || return 0
  local pidfile pid
  # Stop in reverse order: libvirtd before virtlogd.
  tac "$STARTED" | while read -r pidfile; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] || continue
    log "stopping pid $pid ($pidfile)"
    as_root kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -f "$STARTED"
}

with() {
  STARTED=$RUN_DIR/started.with.$$
  install
  trap stop EXIT
  start
  "$@"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
with) shift; with "$@" ;;
*) echo "usage: $0 install|start|stop|with CMD..." >&2; exit 2 ;;
esac
