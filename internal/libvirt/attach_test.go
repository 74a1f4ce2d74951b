package libvirt

import (
	"slices"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
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
		fileDiskDevice(pool+testCID+"-root", "qcow2", disk.Serial(testCID+"-root"), "vda"),
		fileDiskDevice(pool+testCID+"-ephemeral", "qcow2", disk.Serial(testCID+"-ephemeral"), "vdb"),
		configDriveDevice(pool+testCID+"-config.iso", "sda"),
	}
}

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
			got, err := freeTarget(hypervisor.QEMU, used)
			if err != nil || got != tt.want {
				t.Errorf("freeTarget = %s, %v; want %s", got, err, tt.want)
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

func TestUsedTargetsJoinsLiveAndConfig(t *testing.T) {
	live := domainWith(append(vmDisks(), persistentDiskDevice(pool+diskA, disk.FormatQcow2, diskA, "vdc"))...)
	config := domainWith(append(vmDisks(), persistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"))...)
	got, err := freeTarget(hypervisor.QEMU, domainDisks{Live: live, Config: config}.usedTargets())
	if err != nil || got != "vde" {
		t.Errorf("free target with vdc live and vdd in config = %s, %v; want vde", got, err)
	}
}

func TestFindDiskDevice(t *testing.T) {
	bySerial := persistentDiskDevice("/elsewhere/"+diskA, disk.FormatQcow2, diskA, "vdc")
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
			got := findDiskDevice(tt.def, diskA, tt.path)
			switch {
			case tt.wantDev == "" && got != nil:
				t.Errorf("found %s, want none", targetOf(*got))
			case tt.wantDev != "" && (got == nil || targetOf(*got) != tt.wantDev):
				t.Errorf("found %v, want %s", got, tt.wantDev)
			}
		})
	}
}

func TestPersistentDiskCIDsSkipsVMOwnVolumesAndDuplicates(t *testing.T) {
	config := domainWith(append(vmDisks(),
		persistentDiskDevice(pool+diskA, disk.FormatQcow2, diskA, "vdc"),
		persistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"))...)
	live := domainWith(append(vmDisks(),
		persistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"),
		fileDiskDevice(pool+"snap-aaaaaaaa-1111-2222-3333-444444444444", "qcow2", "x", "vde"))...)
	got := persistentDiskCIDs(config, live)
	if !slices.Equal(got, []string{diskA, diskB}) {
		t.Errorf("persistentDiskCIDs = %v, want [%s %s]", got, diskA, diskB)
	}
	if got := persistentDiskCIDs(domainWith(vmDisks()...), nil); len(got) != 0 {
		t.Errorf("a VM with only its own volumes lists %v", got)
	}
}

func TestDescribeUsers(t *testing.T) {
	got := describeUsers([]diskUser{
		{VM: "vm-1", Live: true, Config: true},
		{VM: "vm-2", Live: true},
		{VM: "vm-3", Config: true},
	})
	for _, want := range []string{"attached to VM 'vm-1'", "pending hot-unplug) by VM 'vm-2'", "attached to VM 'vm-3'"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
}

func TestModifyFlags(t *testing.T) {
	tests := []struct {
		live, config bool
		want         golibvirt.DomainDeviceModifyFlags
	}{
		{true, true, golibvirt.DomainDeviceModifyLive | golibvirt.DomainDeviceModifyConfig},
		{false, true, golibvirt.DomainDeviceModifyConfig},
		{true, false, golibvirt.DomainDeviceModifyLive},
	}
	for _, tt := range tests {
		if got := modifyFlags(tt.live, tt.config); got != tt.want {
			t.Errorf("modifyFlags(%v, %v) = %d, want %d", tt.live, tt.config, got, tt.want)
		}
	}
}

func TestHotplugHint(t *testing.T) {
	tests := []struct {
		msg  string
		hint bool
	}{
		{"internal error: No more available PCI slots", true},
		{"Failed to get \"write\" lock", false},
	}
	for _, tt := range tests {
		if got := hotplugHint(errString(tt.msg)) != ""; got != tt.hint {
			t.Errorf("hotplugHint(%q) given = %v, want %v", tt.msg, got, tt.hint)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
