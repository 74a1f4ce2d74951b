package xmldef

import (
	"slices"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

const (
	diskA = "disk-aaaaaaaa-1111-2222-3333-444444444444"
	diskB = "disk-bbbbbbbb-1111-2222-3333-444444444444"
	pool  = "/var/lib/bosh-libvirt-cpi/pool/"
)

// domainWith is a domain definition holding disks.
func domainWith(disks ...libvirtxml.DomainDisk) *libvirtxml.Domain {
	return &libvirtxml.Domain{Devices: &libvirtxml.DomainDeviceList{Disks: disks}}
}

// vmDisks are the disks every VM has: root, ephemeral, config drive.
func vmDisks() []libvirtxml.DomainDisk {
	return []libvirtxml.DomainDisk{
		FileDiskDevice(pool+testCID+"-root", "qcow2", disk.Serial(testCID+"-root"), "vda"),
		FileDiskDevice(pool+testCID+"-ephemeral", "qcow2", disk.Serial(testCID+"-ephemeral"), "vdb"),
		ConfigDriveDevice(pool+testCID+"-config.iso", "sda"),
	}
}

func TestUsedTargetsJoinsLiveAndConfig(t *testing.T) {
	live := domainWith(append(vmDisks(), PersistentDiskDevice(pool+diskA, disk.FormatQcow2, diskA, "vdc"))...)
	config := domainWith(append(vmDisks(), PersistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"))...)
	got, err := FreeTarget(hypervisor.QEMU, UsedTargets(live, config))
	if err != nil || got != "vde" {
		t.Errorf("free target with vdc live and vdd in config = %s, %v; want vde", got, err)
	}
}

// domainWith is a domain definition holding disks.
func TestFreeTarget(t *testing.T) {
	tests := []struct {
		name string
		used []string
		want string
	}{
		{"only the VM's own disks", []string{"vda", "vdb", "sda"}, "vdc"},
		{"a gap is reused", []string{"vda", "vdb", "vdc", "vde"}, "vdd"},
		{"after vdz comes vdaa", append([]string{"vda", "vdb"}, targetsUpTo(t, 24)...), "vdaa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used := map[string]bool{}
			for _, u := range tt.used {
				used[u] = true
			}
			got, err := FreeTarget(hypervisor.QEMU, used)
			if err != nil || got != tt.want {
				t.Errorf("FreeTarget = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func targetsUpTo(t *testing.T, n int) []string {
	var out []string
	for i := range n {
		target, err := hypervisor.QEMU.PersistentTarget(i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, target)
	}
	return out
}

func TestFindDiskDevice(t *testing.T) {
	bySerial := PersistentDiskDevice("/elsewhere/"+diskA, disk.FormatQcow2, diskA, "vdc")
	byPath := libvirtxml.DomainDisk{
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: pool + diskA}},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vdf", Bus: "virtio"},
	}
	tests := []struct {
		name    string
		def     *libvirtxml.Domain
		path    string
		wantDev string
	}{
		{"by serial", domainWith(append(vmDisks(), bySerial)...), pool + diskA, "vdc"},
		{"by serial, path unknown", domainWith(append(vmDisks(), bySerial)...), "", "vdc"},
		{"by path without serial", domainWith(append(vmDisks(), byPath)...), pool + diskA, "vdf"},
		{"absent", domainWith(vmDisks()...), pool + diskA, ""},
		{"no definition (stopped domain's live XML)", nil, pool + diskA, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FindDisk(tt.def, diskA, tt.path)
			switch {
			case tt.wantDev == "" && got != nil:
				t.Errorf("found %s, want none", TargetOf(*got))
			case tt.wantDev != "" && (got == nil || TargetOf(*got) != tt.wantDev):
				t.Errorf("found %v, want %s", got, tt.wantDev)
			}
		})
	}
}

func TestPersistentDiskCIDsSkipsVMOwnVolumesAndDuplicates(t *testing.T) {
	config := domainWith(append(vmDisks(),
		PersistentDiskDevice(pool+diskA, disk.FormatQcow2, diskA, "vdc"),
		PersistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"))...)
	live := domainWith(append(vmDisks(),
		PersistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"),
		FileDiskDevice(pool+"snap-aaaaaaaa-1111-2222-3333-444444444444", "qcow2", "x", "vde"))...)
	got := PersistentDiskCIDs(config, live)
	if !slices.Equal(got, []string{diskA, diskB}) {
		t.Errorf("PersistentDiskCIDs = %v, want [%s %s]", got, diskA, diskB)
	}
	if got := PersistentDiskCIDs(domainWith(vmDisks()...), nil); len(got) != 0 {
		t.Errorf("a VM with only its own volumes lists %v", got)
	}
}
