#!/usr/bin/env bash
# Builds the project's test stemcell from Debian's packages only: an
# OpenStack-format stemcell (stemcell.MF + image holding root.img, qcow2
# compat 0.10) whose disk boots with SeaBIOS: MBR -> syslinux on a FAT
# partition -> Debian's kernel + an initramfs that is the whole root
# filesystem, with the project's test agent (cmd/test-agent) as /init.
# With UEFI, syslinux.efi on the same partition boots the same.
#
#   scripts/build-test-stemcell.sh [OUT]     default OUT: build/test-stemcell.tgz
#
# Needs: linux-image-amd64 busybox-static syslinux syslinux-common
# syslinux-efi mtools dosfstools fdisk e2fsprogs cpio qemu-utils zstd, and Go.
# Env: KERNEL_VERSION (default: the newest /boot/vmlinuz-*),
#      STEMCELL_VERSION (default 1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/go-env.sh
. scripts/stemcell-lib.sh

out=${1:-build/test-stemcell.tgz}
work=build/test-stemcell
name=bosh-libvirt-test-stemcell
version=${STEMCELL_VERSION:-1.0}
disk_mib=64            # the whole root disk
boot_start_sector=2048 # the FAT partition starts at 1 MiB

die() { echo "build-test-stemcell: $*" >&2; exit 1; }

kver=${KERNEL_VERSION:-$(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n1)}
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] || die "no kernel in /boot: apt-get install -y linux-image-amd64"
moddir=/lib/modules/$kver
[ -f "$moddir/modules.dep" ] || die "no $moddir/modules.dep for kernel $kver"
for tool in busybox syslinux mcopy mmd mkfs.vfat sfdisk mke2fs cpio qemu-img zstd; do
  command -v "$tool" >/dev/null || die "missing $tool (see the package list at the top of this script)"
done
file -L "$(command -v busybox)" 2>/dev/null | grep -q 'statically linked' ||
  ldd "$(command -v busybox)" 2>&1 | grep -q 'not a dynamic' ||
  die "busybox is not static: apt-get install -y busybox-static"
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr_bin" ] || die "no $mbr_bin: apt-get install -y syslinux-common"
efi_dir=/usr/lib/SYSLINUX.EFI/efi64
efi_modules=/usr/lib/syslinux/modules/efi64
[ -f "$efi_dir/syslinux.efi" ] || die "no $efi_dir/syslinux.efi: apt-get install -y syslinux-efi"
[ -f "$efi_modules/ldlinux.e64" ] || die "no $efi_modules/ldlinux.e64: apt-get install -y syslinux-common"

rm -rf "$work"
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,etc,"$moddir"}

echo "== test agent (static)"
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags '-s -w' -o "$root/init" ./cmd/test-agent

echo "== busybox, mke2fs and kernel $kver modules"
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
# mke2fs is dynamic: it brings its shared libraries, at the paths ldd names.
mke2fs=$(command -v mke2fs)
cp -L "$mke2fs" "$root/sbin/mke2fs"
for lib in $(ldd "$mke2fs" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
# The agent itself says which modules it loads, in dependency order.
for rel in $("$root/init" list-modules "$moddir"); do
  mkdir -p "$root/$moddir/$(dirname "$rel")"
  cp "$moddir/$rel" "$root/$moddir/$rel"
done
cp "$moddir/modules.dep" "$moddir/modules.builtin" "$root/$moddir/"

echo "== initramfs"
# zstd: small to read through the BIOS, and quick to unpack under TCG.
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) | zstd -q -19 -T0 >"$work/initrd.img"

echo "== boot partition and disk"
fat_kib=$(( (disk_mib * 1024) - boot_start_sector / 2 ))
mkfs.vfat -F 16 -n BOSHBOOT -C "$work/boot.img" "$fat_kib" >/dev/null
write_syslinux_cfg "$work/syslinux.cfg"
# syslinux installs into an unmounted FAT image through mtools.
syslinux --install "$work/boot.img"
mcopy -i "$work/boot.img" "/boot/vmlinuz-$kver" ::vmlinuz
mcopy -i "$work/boot.img" "$work/initrd.img" ::initrd.img
mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::syslinux.cfg
# The same partition boots with UEFI too (VM cloud_properties firmware:
# efi): syslinux.efi at the removable-media path reads the same
# configuration; the firmware finds it on the FAT partition whatever its
# MBR type, which stays the one SeaBIOS's syslinux boots.
mmd -i "$work/boot.img" ::EFI ::EFI/BOOT
mcopy -i "$work/boot.img" "$efi_dir/syslinux.efi" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$work/boot.img" "$efi_modules/ldlinux.e64" ::EFI/BOOT/ldlinux.e64
mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::EFI/BOOT/syslinux.cfg

raw=$work/root.raw
truncate -s "${disk_mib}M" "$raw"
printf 'label: dos\nstart=%d, type=e, bootable\n' "$boot_start_sector" | sfdisk --quiet "$raw"
dd if="$mbr_bin" of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/boot.img" of="$raw" bs=512 seek="$boot_start_sector" conv=notrunc status=none

mkdir -p "$work/image" "$work/stemcell"
qemu-img convert -f raw -O qcow2 -o compat=0.10 "$raw" "$work/image/root.img"
tar -czf "$work/stemcell/image" -C "$work/image" root.img

echo "== stemcell"
. /etc/os-release
write_openstack_stemcell "$work/stemcell" "$out" "$name" "$version" 2 \
  "${ID}-${VERSION_CODENAME:-unknown}" "${ID}" "$disk_mib"
echo "test stemcell: $out (kernel $kver, initramfs $(du -k "$work/initrd.img" | cut -f1) KiB)"
