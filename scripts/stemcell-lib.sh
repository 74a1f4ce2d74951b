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
