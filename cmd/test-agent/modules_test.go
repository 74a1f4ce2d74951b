package main

import (
	"reflect"
	"strings"
	"testing"
)

const modulesDep = `kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/broken/a.ko: kernel/broken/missing.ko
kernel/cycle/x.ko: kernel/cycle/y.ko
kernel/cycle/y.ko: kernel/cycle/x.ko
`

func TestLoadOrder(t *testing.T) {
	deps, err := parseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	builtin, _ := parseModulesBuiltin(strings.NewReader("kernel/drivers/acpi/button.ko\n"))
	cases := []struct {
		name    string
		wanted  []string
		want    []string
		wantErr string
	}{
		{"dependencies first, each once", []string{"virtio_blk", "virtio_pci"}, []string{
			"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/block/virtio_blk.ko",
			"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
			"kernel/drivers/virtio/virtio_pci.ko"}, ""},
		{"deep chain", []string{"ahci"}, []string{
			"kernel/drivers/scsi/scsi_common.ko", "kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/ata/libata.ko",
			"kernel/drivers/ata/libahci.ko", "kernel/drivers/ata/ahci.ko"}, ""},
		{"dash and underscore are one", []string{"crc32c_intel"}, []string{"kernel/arch/x86/crypto/crc32c-intel.ko"}, ""},
		{"built in modules are skipped", []string{"button"}, nil, ""},
		{"unknown module", []string{"nosuch"}, nil, "neither in modules.dep nor built in"},
		{"dependency not listed", []string{"a"}, nil, "which modules.dep does not list"},
		{"cycle", []string{"x"}, nil, "cycle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadOrder(deps, builtin, tc.wanted)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("loadOrder(%v) = %v, %v; want %v", tc.wanted, got, err, tc.want)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	cases := map[string]string{
		"kernel/drivers/block/virtio_blk.ko":     "virtio_blk",
		"kernel/arch/x86/crypto/crc32c-intel.ko": "crc32c_intel",
		"kernel/drivers/block/virtio_blk.ko.xz":  "virtio_blk",
		"kernel/fs/ext4/ext4.ko.zst":             "ext4",
	}
	for path, want := range cases {
		if got := moduleName(path); got != want {
			t.Errorf("moduleName(%q) = %q; want %q", path, got, want)
		}
	}
}
