#!/usr/bin/env bash
# Builds the project's vSphere-format test stemcell (vsphere-ovf /
# general-ovf) from the OpenStack-format test stemcell: the same Debian
# kernel and the same initramfs (the test agent as /init), booted with UEFI
# instead of SeaBIOS. The image tarball holds what a real vSphere stemcell's
# does: image.ovf, image.mf and image-disk1.vmdk (streamOptimized).
#
#   scripts/build-vsphere-test-stemcell.sh [OUT] [TEST_STEMCELL]
#     default OUT: build/vsphere-test-stemcell.tgz
#     default TEST_STEMCELL: build/test-stemcell.tgz (make test-stemcell)
#
# The disk: GPT, one EFI system partition (FAT16) holding
#   /EFI/BOOT/BOOTX64.EFI   syslinux.efi (syslinux-efi), the removable-media
#                           path every UEFI firmware boots without NVRAM entries
#   /EFI/BOOT/ldlinux.e64   its core module (syslinux-common)
#   /EFI/BOOT/syslinux.cfg, /vmlinuz, /initrd.img
# Why syslinux.efi: it is a ready-made EFI binary from a Debian package that
# is installed by copying two files with mtools, like the BIOS stemcell's
# syslinux. grub-install would probe the build host's devices and firmware
# and wants a mounted ESP; grub-mkstandalone works offline but brings ~4 MiB
# of modules for what three lines of syslinux.cfg say; a systemd-stub UKI
# needs objcopy section surgery. Nothing is mounted, nothing is downloaded.
#
# Needs: syslinux-efi syslinux-common mtools dosfstools fdisk qemu-utils, and
# the test stemcell. ovmf is needed to boot it (internal/stemcell's boot test).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/stemcell-lib.sh

out=${1:-build/vsphere-test-stemcell.tgz}
source_stemcell=${2:-build/test-stemcell.tgz}
work=build/vsphere-test-stemcell
name=bosh-libvirt-vsphere-test-stemcell
version=${STEMCELL_VERSION:-1.0}
disk_mib=64
esp_start_sector=2048 # the ESP starts at 1 MiB
efi_dir=/usr/lib/SYSLINUX.EFI/efi64
efi_modules=/usr/lib/syslinux/modules/efi64

die() { echo "build-vsphere-test-stemcell: $*" >&2; exit 1; }

[ -f "$source_stemcell" ] || die "no $source_stemcell: make test-stemcell"
[ -f "$efi_dir/syslinux.efi" ] || die "no $efi_dir/syslinux.efi: apt-get install -y syslinux-efi"
[ -f "$efi_modules/ldlinux.e64" ] || die "no $efi_modules/ldlinux.e64: apt-get install -y syslinux-common"
for tool in mcopy mdir mmd mkfs.vfat sfdisk qemu-img sha1sum sha256sum; do
  command -v "$tool" >/dev/null || die "missing $tool (see the package list at the top of this script)"
done

rm -rf "$work"
mkdir -p "$work/source" "$work/image" "$work/stemcell"

echo "== kernel and initramfs from $source_stemcell"
tar -xzf "$source_stemcell" -C "$work/source" image
tar -xzf "$work/source/image" -C "$work/source" root.img
qemu-img convert -f qcow2 -O raw "$work/source/root.img" "$work/source/root.raw"
# The BIOS stemcell's FAT partition starts at 1 MiB too (build-test-stemcell.sh).
bios_fat="$work/source/root.raw@@$((1024 * 1024))"
mcopy -i "$bios_fat" ::vmlinuz "$work/source/vmlinuz"
mcopy -i "$bios_fat" ::initrd.img "$work/source/initrd.img"

echo "== EFI system partition"
esp_kib=$(( disk_mib * 1024 - esp_start_sector / 2 - 64 )) # leaves room for the backup GPT
mkfs.vfat -F 16 -n BOSHEFI -C "$work/esp.img" "$esp_kib" >/dev/null
write_syslinux_cfg "$work/syslinux.cfg"
mmd -i "$work/esp.img" ::EFI ::EFI/BOOT
mcopy -i "$work/esp.img" "$efi_dir/syslinux.efi" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$work/esp.img" "$efi_modules/ldlinux.e64" ::EFI/BOOT/ldlinux.e64
mcopy -i "$work/esp.img" "$work/syslinux.cfg" ::EFI/BOOT/syslinux.cfg
mcopy -i "$work/esp.img" "$work/source/vmlinuz" ::vmlinuz
mcopy -i "$work/esp.img" "$work/source/initrd.img" ::initrd.img

echo "== GPT disk, streamOptimized VMDK"
raw=$work/root.raw
truncate -s "${disk_mib}M" "$raw"
printf 'label: gpt\nstart=%d, size=%d, type=uefi, name="EFI System"\n' \
  "$esp_start_sector" "$(( esp_kib * 2 ))" | sfdisk --quiet "$raw"
dd if="$work/esp.img" of="$raw" bs=512 seek="$esp_start_sector" conv=notrunc status=none
vmdk=image-disk1.vmdk
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$raw" "$work/image/$vmdk"

capacity=$(( disk_mib * 1024 * 1024 ))
vmdk_size=$(stat -c %s "$work/image/$vmdk")
# The shape of a real vSphere stemcell's image.ovf: a file reference, a disk
# whose capacity is given with its allocation units, a SCSI controller holding
# it, and the firmware as a VMware extra config key.
cat >"$work/image/image.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
    xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="$vmdk" ovf:id="file1" ovf:size="$vmdk_size"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="$disk_mib" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"
        ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="$name">
    <Info>A virtual machine</Info>
    <Name>$name</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>$name</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>1 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>512MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>512</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI Controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard Disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
OVF
(cd "$work/image" && for f in image.ovf "$vmdk"; do
  printf 'SHA256(%s)= %s\n' "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
done >image.mf)
tar -czf "$work/stemcell/image" -C "$work/image" image.ovf image.mf "$vmdk"

echo "== stemcell"
. /etc/os-release
cat >"$work/stemcell/stemcell.MF" <<MF
---
name: $name
version: '$version'
api_version: 2
bosh_protocol: '1'
operating_system: ${ID}-${VERSION_CODENAME:-unknown}
stemcell_formats:
- vsphere-ovf
- general-ovf
sha1: $(sha1sum "$work/stemcell/image" | cut -d' ' -f1)
cloud_properties:
  name: $name
  version: '$version'
  infrastructure: vsphere
  hypervisor: esxi
  disk: $disk_mib
  architecture: x86_64
MF
mkdir -p "$(dirname "$out")"
tar -czf "$out.tmp" -C "$work/stemcell" stemcell.MF image
mv "$out.tmp" "$out"
echo "vSphere test stemcell: $out (VMDK $vmdk_size bytes, capacity $capacity bytes, UEFI)"
