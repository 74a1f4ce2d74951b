# Shared by the stemcell build scripts (sourced).

# write_syslinux_cfg FILE writes the syslinux configuration both test
# stemcells boot with (BIOS syslinux and syslinux.efi read the same): the
# kernel and the initramfs at the root of the boot filesystem, the serial
# console the tests read.
write_syslinux_cfg() {
  cat >"$1" <<CFG
DEFAULT agent
PROMPT 0
TIMEOUT 0
LABEL agent
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND console=ttyS0,115200 quiet
CFG
}

# write_openstack_stemcell DIR OUT NAME VERSION API_VERSION OS DISTRO DISK_MIB
# writes DIR/stemcell.MF for the qcow2 image already at DIR/image (an
# OpenStack/KVM stemcell, as create_stemcell expects it) and packs both into OUT.
write_openstack_stemcell() {
  local dir=$1 out=$2 name=$3 version=$4 api=$5 os=$6 distro=$7 disk_mib=$8
  cat >"$dir/stemcell.MF" <<MF
---
name: $name
version: '$version'
api_version: $api
bosh_protocol: '1'
operating_system: $os
stemcell_formats:
- openstack-qcow2
sha1: $(sha1sum "$dir/image" | cut -d' ' -f1)
cloud_properties:
  name: $name
  version: '$version'
  infrastructure: openstack
  hypervisor: kvm
  disk: $disk_mib
  disk_format: qcow2
  container_format: bare
  os_type: linux
  os_distro: $distro
  architecture: x86_64
  auto_disk_config: true
MF
  mkdir -p "$(dirname "$out")"
  tar -czf "$out.tmp" -C "$dir" stemcell.MF image
  mv "$out.tmp" "$out"
}

# warden_agent_settings ROOT turns the agent stemcell's root into a warden
# stemcell's, the way bosh-linux-stemcell-builder's warden stage does: the
# agent reads its settings from the file the CPI writes, mounts the
# CPI's preformatted persistent disk by bind-mounting its hint path, sets
# up no disks (the container has none) and no network (the container's
# runtime configured it); units with no function in a container are masked.
warden_agent_settings() {
  local root=$1
  cat >"$root/var/vcap/bosh/agent.json" <<'JSON'
{
  "Platform": {
    "Linux": {
      "UseDefaultTmpDir": true,
      "UsePreformattedPersistentDisk": true,
      "BindMountPersistentDisk": true,
      "SkipDiskSetup": true,
      "ServiceManager": "systemd"
    }
  },
  "Infrastructure": {
    "Settings": {
      "Sources": [
        {
          "Type": "File",
          "SettingsPath": "/var/vcap/bosh/warden-cpi-agent-env.json"
        }
      ],
      "UseRegistry": false
    }
  }
}
JSON
  cat >"$root/var/vcap/bosh/bin/restart_networking" <<'NET'
#!/bin/bash
echo "skip network restart: the container's network is configured by its runtime"
NET
  chmod 0755 "$root/var/vcap/bosh/bin/restart_networking"
  # The hint directory the persistent disks appear under.
  mkdir -p "$root/warden-cpi-dev"
  : >"$root/etc/fstab"
  # udev: no devices to manage; remount-fs: no root filesystem in fstab;
  # networkd: the runtime configured the NICs; getty: no terminal.
  local unit
  for unit in systemd-udevd systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-remount-fs \
              systemd-networkd systemd-networkd.socket getty@tty1 serial-getty@ttyS0 console-getty; do
    case $unit in *.*) ;; *) unit=$unit.service ;; esac
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  rm -f "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  # No kernel boots from a container's root.
  rm -rf "$root"/boot/* "$root"/usr/lib/modules/* "$root"/lib/modules/* 2>/dev/null || true
}

# write_warden_stemcell DIR OUT NAME VERSION API_VERSION OS writes
# DIR/stemcell.MF for the root filesystem tarball already at DIR/image (a
# warden stemcell: warden-tar, general-tar) and packs both into OUT.
write_warden_stemcell() {
  local dir=$1 out=$2 name=$3 version=$4 api=$5 os=$6
  cat >"$dir/stemcell.MF" <<MF
---
name: $name
version: '$version'
api_version: $api
bosh_protocol: '1'
operating_system: $os
stemcell_formats:
- warden-tar
- general-tar
sha1: $(sha1sum "$dir/image" | cut -d' ' -f1)
cloud_properties: {}
MF
  mkdir -p "$(dirname "$out")"
  # The CLI unpacks every stemcell with tar -xz; the image is gzipped already.
  tar -cf - -C "$dir" stemcell.MF image | gzip -1 >"$out.tmp"
  mv "$out.tmp" "$out"
}
