#!/usr/bin/env bash
# Builds a stemcell with the REAL bosh-agent from Debian 12 packages: an
# OpenStack/KVM stemcell (stemcell.MF + image holding root.img, qcow2 compat
# 0.10) that boots with SeaBIOS: MBR -> syslinux on a small FAT partition ->
# Debian's kernel and initramfs -> systemd on an ext4 root partition, with
# bosh-agent (built from the Go module pinned in tools/bosh-agent), monit run
# by systemd, the vcap user and the /var/vcap layout the way
# bosh-linux-stemcell-builder makes them (stages bosh_users, bosh_monit,
# bosh_go_agent, bosh_openstack_agent_settings), console on ttyS0.
#
#   scripts/build-agent-stemcell.sh [OUT]    default OUT: build/agent-stemcell.tgz
#   scripts/build-agent-stemcell.sh --warden [OUT]
#       the same root filesystem as a warden stemcell (warden-tar, general-tar:
#       the image is the rootfs tgz) for container runtimes (Docker), default
#       OUT build/agent-stemcell-warden.tgz: the agent reads its settings from
#       /var/vcap/bosh/warden-cpi-agent-env.json and bind-mounts the persistent
#       disk from its hint, as bosh-linux-stemcell-builder's warden stage sets
#       the agent up; no kernel, boot disk or udev.
#
# The slow part, the debootstrap rootfs (~8 min), is cached as a tarball under
# $BOSH_LIBVIRT_CPI_CACHE (default /var/cache/bosh-libvirt-cpi), keyed by a
# hash of everything that goes into it, so a fresh clone (CI) reuses it.
# Needs: debootstrap syslinux syslinux-common mtools dosfstools fdisk
# e2fsprogs qemu-utils zstd, Go, and root (debootstrap chroots).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/go-env.sh

form=openstack
if [ "${1:-}" = "--warden" ]; then form=warden; shift; fi
if [ $form = warden ]; then
  out=${1:-build/agent-stemcell-warden.tgz}
  work=build/agent-stemcell-warden
else
  out=${1:-build/agent-stemcell.tgz}
  work=build/agent-stemcell
fi
cache=${BOSH_LIBVIRT_CPI_CACHE:-/var/cache/bosh-libvirt-cpi}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
name=bosh-libvirt-agent-stemcell
version=${STEMCELL_VERSION:-1.0}
disk_mib=3072          # the root disk the VM gets
boot_start_sector=2048 # partition 1 (FAT, syslinux, kernel, initrd) at 1 MiB
boot_mib=128
root_label=bosh-root

# What the rootfs holds. systemd runs agent and monit (ServiceManager systemd);
# udev makes the /dev/disk/by-id links the agent resolves disks by; parted,
# fdisk and e2fsprogs partition and format disks; cloud-guest-utils gives
# growpart (root disk growth); resolvconf is what the agent's ubuntu platform
# calls for DNS; iproute2 for networking (agent writes systemd-networkd files).
packages=systemd,systemd-sysv,udev,linux-image-amd64,initramfs-tools,monit,iproute2,iputils-ping,procps,kmod,e2fsprogs,parted,fdisk,cloud-guest-utils,sudo,resolvconf,netbase,less
rootfs_recipe_version=1 # bump when the debootstrap command below changes

die() { echo "build-agent-stemcell: $*" >&2; exit 1; }
step() { echo "== $* ($(date +%T))"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap chroots)"
for tool in debootstrap syslinux mcopy mkfs.vfat sfdisk mke2fs qemu-img zstd; do
  command -v "$tool" >/dev/null || die "missing $tool: scripts/host.sh install"
done
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr_bin" ] || die "no $mbr_bin: apt-get install -y syslinux-common"

# rootfs_tarball prints the cached debootstrap tarball, making it when absent.
rootfs_tarball() {
  local key tarball tmp
  key=$(printf '%s\n' "$rootfs_recipe_version" "$suite" "$mirror" "$packages" | sha256sum | cut -c1-16)
  tarball=$cache/rootfs-$suite-$key.tar.zst
  if [ -s "$tarball" ]; then
    echo "$tarball"
    return
  fi
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/debootstrap.XXXXXX")
  step "debootstrap $suite (cold cache: about 8 min) into $tmp" >&2
  debootstrap --variant=minbase --include="$packages" "$suite" "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -n 30 "$tmp/debootstrap.log" >&2; die "debootstrap failed; log: $tmp/debootstrap.log"; }
  rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
  tar -C "$tmp/root" --numeric-owner -cf - . | zstd -q -T0 -3 >"$tmp/rootfs.tar.zst"
  mv "$tmp/rootfs.tar.zst" "$tarball"
  rm -rf "$tmp"
  echo "$tarball"
}

if [ "${1:-}" = "--rootfs-only" ]; then rootfs_tarball; exit 0; fi

tarball=$(rootfs_tarball)
rm -rf "$work"
root=$work/root
mkdir -p "$root"
step "rootfs from $tarball"
zstd -dc "$tarball" | tar -C "$root" --numeric-owner -xf -

bosh=$root/var/vcap/bosh
step "bosh-agent $(cd tools/bosh-agent && go list -m -f '{{.Version}}' github.com/cloudfoundry/bosh-agent/v2) and monit-csrf-proxy"
mkdir -p "$bosh/bin" "$bosh/etc" "$bosh/log"
agent_version=$(cd tools/bosh-agent && go list -m -f '{{.Version}}' github.com/cloudfoundry/bosh-agent/v2)
(cd tools/bosh-agent && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.VersionLabel=${agent_version#v}" \
  -o "$PWD/../../$bosh/bin/bosh-agent" github.com/cloudfoundry/bosh-agent/v2/main)
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bosh/bin/monit-csrf-proxy" ./cmd/monit-csrf-proxy

in_root() { chroot "$root" /bin/sh -ec "$1"; }

step "users (stage bosh_users)"
cat >"$root/etc/sudoers" <<'SUDOERS'
Defaults        !lecture,tty_tickets,!fqdn
root    ALL=(ALL) ALL
%admin ALL=(ALL) ALL
%bosh_sudoers ALL=(ALL) NOPASSWD: ALL
SUDOERS
chmod 0440 "$root/etc/sudoers"
in_root '
groupadd --system admin
groupadd -f vcap
useradd -m --comment "BOSH System User" vcap --uid 1000 -g vcap
chmod 700 ~vcap
groupadd bosh_sshers
usermod -G admin,adm,audio,cdrom,dialout,floppy,video,bosh_sshers,dip,plugdev vcap
usermod -s /bin/bash vcap
groupadd bosh_sudoers
# Ubuntu has these from rsyslog; the agent chowns its root log dir to root:syslog.
groupadd --system syslog
useradd --system -g syslog -d /nonexistent -s /usr/sbin/nologin syslog
passwd -l root >/dev/null
passwd -l vcap >/dev/null
sed -i "s/:::/:*::/g" /etc/gshadow
'
echo 'export PATH=/var/vcap/bosh/bin:$PATH' | tee -a "$root/root/.bashrc" >>"$root/home/vcap/.bashrc"

step "/var/vcap, monit and agent (stages bosh_monit, bosh_go_agent, bosh_openstack_agent_settings)"
mkdir -p "$root/var/vcap/monit/job" "$root/var/vcap/micro_bosh/data/cache" "$root/var/vcap/data" "$root/var/vcap/store"
touch "$root/var/vcap/monit/empty.monitrc"
echo ubuntu >"$bosh/etc/operating_system"  # the agent's platform: the Linux one stemcells use
# monit listens on 2823; the agent's fixed 127.0.0.1:2822 is monit-csrf-proxy.
cat >"$bosh/etc/monitrc" <<'MONITRC'
set daemon 10
set logfile /var/vcap/monit/monit.log

set httpd port 2823 and use address 127.0.0.1
  allow cleartext /var/vcap/monit/monit.user

include /var/vcap/monit/*.monitrc
include /var/vcap/monit/job/*.monitrc
MONITRC
chmod 0700 "$bosh/etc/monitrc"
cat >"$root/var/vcap/monit/alerts.monitrc" <<'ALERTS'
set alert agent@local

set mailserver localhost port 2825
     with timeout 15 seconds

set eventqueue
    basedir /var/vcap/monit/events
    slots 5000

set mail-format {
  from: monit@localhost
  subject: Monit Alert
  message: Service: $SERVICE
  Event: $EVENT
  Action: $ACTION
  Date: $DATE
  Description: $DESCRIPTION
}
ALERTS
chmod 0600 "$root/var/vcap/monit/alerts.monitrc"
# The agent runs `monit reload`, `monit stop -g vcap`...: stemcells build monit
# with its control file under /var/vcap/bosh/etc; Debian's looks in /etc/monit.
cat >"$bosh/bin/monit" <<'MONIT'
#!/bin/sh
exec /usr/bin/monit -c /var/vcap/bosh/etc/monitrc "$@"
MONIT
cat >"$bosh/bin/restart_networking" <<'NET'
#!/bin/bash
systemctl restart systemd-networkd
NET
cat >"$bosh/bin/bosh-agent-rc" <<'RC'
#!/bin/sh
set -e
if [ -e /dev/sr0 ]; then
  chmod 0660 /dev/sr0
  chown root:root /dev/sr0
fi
if [ -e /dev/shm ]; then
  chmod 0770 /dev/shm
  chown root:vcap /dev/shm
fi
RC
# The agent runs this at bootstrap (stage bosh_log_audit_start: `service auditd
# start`); this stemcell has no auditd or rsyslog, the agent logs to the console.
cat >"$bosh/bin/bosh-start-logging-and-auditing" <<'LOGGING'
#!/bin/sh
exit 0
LOGGING
chmod 0755 "$bosh/bin/"*
cat >"$bosh/agent.json" <<'JSON'
{
  "Platform": {
    "Linux": {
      "PartitionerType": "parted",
      "CreatePartitionIfNoEphemeralDisk": true,
      "DevicePathResolutionType": "virtio",
      "DiskIDTransformPattern": "^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$",
      "DiskIDTransformReplacement": "scsi-${1}${2}${3}${4}${5}",
      "ServiceManager": "systemd"
    }
  },
  "Infrastructure": {
    "Settings": {
      "Sources": [
        {
          "Type": "File",
          "SettingsPath": "/var/vcap/bosh/agent-bootstrap-env.json"
        },
        {
          "Type": "ConfigDrive",
          "DiskPaths": [
            "/dev/disk/by-label/CONFIG-2",
            "/dev/disk/by-label/config-2"
          ],
          "MetaDataPath": "ec2/latest/meta-data.json",
          "UserDataPath": "ec2/latest/user-data"
        },
        {
          "Type": "HTTP",
          "URI": "http://169.254.169.254",
          "UserDataPath": "/latest/user-data",
          "InstanceIDPath": "/latest/meta-data/instance-id",
          "SSHKeysPath": "/latest/meta-data/public-keys/0/openssh-key"
        }
      ],

      "UseServerName": true,
      "UseRegistry": true
    }
  }
}
JSON

units=$root/lib/systemd/system
# As bosh_go_agent's unit, except that the agent's log also goes to the serial
# console: the console log is the post-mortem of a VM nobody can log into.
cat >"$units/bosh-agent.service" <<'UNIT'
[Unit]
Description=Bosh agent service
After=network.target

[Service]
WorkingDirectory=/var/vcap/bosh
ExecStart=/bin/bash -c 'PATH=/var/vcap/bosh/bin:$PATH \
    exec nice -n -15 /var/vcap/bosh/bin/bosh-agent \
    -P $(cat /var/vcap/bosh/etc/operating_system) \
    -C /var/vcap/bosh/agent.json'
Restart=always
KillMode=process
StandardOutput=journal+console
StandardError=inherit
SyslogIdentifier=bosh-agent

[Install]
WantedBy=multi-user.target
Alias=agent.service
UNIT
# As bosh_monit's unit (without its nftables rules), replacing Debian's.
cat >"$units/monit.service" <<'UNIT'
[Unit]
Description=Monit service
After=network.target monit-csrf-proxy.service
ConditionPathExists=/var/vcap/data/sys/run

[Service]
ExecStart=/bin/bash -c 'PATH=/var/vcap/bosh/bin:$PATH exec nice -n -10 /var/vcap/bosh/bin/monit -I'
Restart=always
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
cat >"$units/monit-csrf-proxy.service" <<'UNIT'
[Unit]
Description=CSRF tokens for bosh-agent's monit requests (see cmd/monit-csrf-proxy)
Before=bosh-agent.service

[Service]
ExecStart=/var/vcap/bosh/bin/monit-csrf-proxy -listen 127.0.0.1:2822 -monit 127.0.0.1:2823
Restart=always
StandardOutput=journal+console
StandardError=inherit

[Install]
WantedBy=multi-user.target
UNIT
wants=$root/etc/systemd/system/multi-user.target.wants
mkdir -p "$wants"
rm -f "$wants/monit.service" "$root/etc/rc"?.d/*monit
for unit in bosh-agent monit-csrf-proxy systemd-networkd; do
  ln -sf "/lib/systemd/system/$unit.service" "$wants/$unit.service"
done
ln -sf /lib/systemd/system/bosh-agent.service "$root/etc/systemd/system/agent.service"

step "system files"
echo bosh-stemcell >"$root/etc/hostname"
: >"$root/etc/machine-id"

if [ $form = warden ]; then
  . scripts/stemcell-lib.sh
  warden_agent_settings "$root"
  mkdir -p "$work/stemcell"
  step "rootfs tarball (warden-tar)"
  tar -C "$root" --numeric-owner -cf - . | gzip -1 >"$work/stemcell/image"
  write_warden_stemcell "$work/stemcell" "$out" "$name-warden" "$version" 3 "debian-$suite"
  rm -rf "$root"
  echo "agent stemcell (warden): $out (bosh-agent $agent_version, $(du -m "$out" | cut -f1) MiB)"
  exit 0
fi
cat >"$root/etc/fstab" <<FSTAB
LABEL=$root_label / ext4 defaults,errors=remount-ro 0 1
FSTAB

step "disk: MBR, FAT boot partition with syslinux, ext4 root"
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
[ -f "$initrd" ] || die "no initramfs $initrd in the rootfs"
root_start_mib=$((1 + boot_mib))
root_mib=$((disk_mib - root_start_mib))
mkfs.vfat -F 32 -n BOSHBOOT -C "$work/boot.img" $((boot_mib * 1024)) >/dev/null
cat >"$work/syslinux.cfg" <<CFG
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=LABEL=$root_label rw console=ttyS0,115200n8
CFG
syslinux --install "$work/boot.img"
mcopy -i "$work/boot.img" "$kernel" ::vmlinuz
mcopy -i "$work/boot.img" "$initrd" ::initrd.img
mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::syslinux.cfg
mke2fs -q -t ext4 -L "$root_label" -d "$root" "$work/root.ext4" "${root_mib}M"

raw=$work/root.raw
truncate -s "${disk_mib}M" "$raw"
printf 'label: dos\nstart=%d, size=%dMiB, type=c, bootable\nstart=%dMiB, type=83\n' \
  "$boot_start_sector" "$boot_mib" "$root_start_mib" | sfdisk --quiet "$raw"
dd if="$mbr_bin" of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/boot.img" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$raw" bs=1M seek="$root_start_mib" conv=notrunc,sparse status=none

mkdir -p "$work/image" "$work/stemcell"
qemu-img convert -f raw -O qcow2 -o compat=0.10 "$raw" "$work/image/root.img"
rm -f "$raw" "$work/root.ext4" "$work/boot.img"
tar -czf "$work/stemcell/image" -C "$work/image" root.img

step "stemcell"
. scripts/stemcell-lib.sh
write_openstack_stemcell "$work/stemcell" "$out" "$name" "$version" 3 "debian-$suite" debian "$disk_mib"
rm -rf "$root"
echo "agent stemcell: $out (bosh-agent $agent_version, $(du -m "$out" | cut -f1) MiB)"
