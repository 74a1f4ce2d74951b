#!/usr/bin/env bash
# Runs CMD next to a private libvirtd, virtlogd and libvirt network, inside the
# network and mount namespaces this script is started in:
#   unshare --net --mount --propagation private in-namespace.sh SCRATCH CIDR_HOST CMD...
# Scratch directories are bind-mounted over libvirt's state and config
# directories, so nothing collides with a libvirtd already on the machine;
# the network's bridge exists only in this network namespace, so the bosh
# CLI's traffic to the guest never leaves it. On exit every domain the private
# libvirtd runs is destroyed and both daemons are stopped by their pids.
# CMD finds the private daemon's URI in BOSH_LIBVIRT_CPI_URI.
# With LIBVIRTD_TLS_DIR set (a directory holding cacert.pem, servercert.pem
# and serverkey.pem) libvirtd also listens on TLS (port 16514, this network
# namespace only), client certificates checked against that CA; never on TCP.
set -euo pipefail
scratch=$1 host_ip=$2
shift 2

die() { echo "in-namespace.sh: $*" >&2; exit 1; }
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
  die "not in a network namespace of its own: start me under unshare --net --mount"

ip link set lo up
for dir in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
  mkdir -p "$scratch/ns$dir"
done
# Only the daemons' config files: not the machine's domain, network and pool
# definitions.
find /etc/libvirt -maxdepth 1 -type f -exec cp {} "$scratch/ns/etc/libvirt/" \;
# The directories the Debian packages make and libvirtd does not.
mkdir -p "$scratch/ns/var/lib/libvirt/"{images,dnsmasq,qemu,network} "$scratch/ns/var/log/libvirt/qemu" "$scratch/ns/var/cache/libvirt/qemu"
chown libvirt-qemu:libvirt-qemu "$scratch/ns/var/lib/libvirt/qemu" 2>/dev/null || true
chmod 0751 "$scratch/ns/var/lib/libvirt/images" "$scratch/ns/var/cache/libvirt/qemu"
for dir in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
  mount --bind "$scratch/ns$dir" "$dir"
done
echo 'unix_sock_dir = "/run/libvirt"' >>/etc/libvirt/libvirtd.conf
uri="qemu+unix:///system?socket=/run/libvirt/libvirt-sock"

cleanup() {
  local dom pid
  for dom in $(virsh -c "$uri" list --all --name 2>/dev/null); do
    virsh -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
    virsh -c "$uri" undefine --nvram "$dom" >/dev/null 2>&1 || virsh -c "$uri" undefine "$dom" >/dev/null 2>&1 || true
  done
  # A QEMU that outlived its domain (libvirtd gone first): its pid file.
  for pid in $(cat /run/libvirt/qemu/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  for pidfile in /run/libvirt/libvirtd.pid /run/libvirt/virtlogd.pid; do
    pid=$(cat "$pidfile" 2>/dev/null) && kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

listen=()
if [ -n "${LIBVIRTD_TLS_DIR:-}" ]; then
  cat >>/etc/libvirt/libvirtd.conf <<CONF
listen_tls = 1
listen_tcp = 0
ca_file = "$LIBVIRTD_TLS_DIR/cacert.pem"
cert_file = "$LIBVIRTD_TLS_DIR/servercert.pem"
key_file = "$LIBVIRTD_TLS_DIR/serverkey.pem"
tls_no_verify_certificate = 0
auth_tls = "none"
CONF
  listen=(--listen)
fi
virtlogd -d -p /run/libvirt/virtlogd.pid
libvirtd -d "${listen[@]}" -p /run/libvirt/libvirtd.pid
for _ in $(seq 1 60); do
  virsh -c "$uri" version >/dev/null 2>&1 && break
  sleep 0.5
done
virsh -c "$uri" version >/dev/null || die "private libvirtd did not answer at $uri within 30 s"

cat >"$scratch/network.xml" <<XML
<network>
  <name>createenv</name>
  <bridge name="virbr-ce0" stp="off"/>
  <dns enable="no"/>
  <ip address="$host_ip" prefix="24"/>
</network>
XML
virsh -c "$uri" net-define "$scratch/network.xml" >/dev/null
virsh -c "$uri" net-start createenv >/dev/null
# As a host's own networks are: up again after a reboot.
virsh -c "$uri" net-autostart createenv >/dev/null

BOSH_LIBVIRT_CPI_URI=$uri "$@"
