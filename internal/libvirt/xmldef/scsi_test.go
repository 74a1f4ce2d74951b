package xmldef

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

func scsiDomain(disks ...libvirtxml.DomainDisk) *libvirtxml.Domain {
	return &libvirtxml.Domain{
		Type: "kvm", Name: "scsi-test",
		Memory: &libvirtxml.DomainMemory{Value: 512, Unit: "MiB"},
		OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm"}},
		Devices: &libvirtxml.DomainDeviceList{
			Controllers: []libvirtxml.DomainController{SCSIControllerDevice()},
			Disks:       disks,
		},
	}
}

func TestSCSIDiskDeviceValidates(t *testing.T) {
	dom := scsiDomain(
		FileDiskDevice("/pool/root.qcow2", "qcow2", "", "vda"),
		SCSIDiskDevice("/pool/disk-a", "raw", "diskaaaaaaaaaaaaaaaa", "sda", 0),
		SCSIDiskDevice("/pool/disk-b", "raw", "diskbbbbbbbbbbbbbbbb", "sdb", 3),
	)
	validateDomain(t, "with SCSI disks", *dom)
	doc, _ := dom.Marshal()
	for _, want := range []string{`model="virtio-scsi"`, `bus="scsi"`, `type="drive" controller="0" bus="0" target="3" unit="0"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("domain XML lacks %s:\n%s", want, doc)
		}
	}
}

func TestFreeSCSITarget(t *testing.T) {
	at := func(target int) libvirtxml.DomainDisk {
		return SCSIDiskDevice("/p", "raw", "", "sdz", target)
	}
	otherController := at(1)
	c := uint(1)
	otherController.Address.Drive.Controller = &c
	cases := []struct {
		name         string
		live, config *libvirtxml.Domain
		want         int
	}{
		{"no disks", nil, scsiDomain(), 0},
		{"virtio-blk disks take no target", nil, scsiDomain(FileDiskDevice("/r", "qcow2", "", "vda")), 0},
		{"lowest gap", nil, scsiDomain(at(0), at(2)), 1},
		{"live only (pending unplug) still holds", scsiDomain(at(0), at(1)), scsiDomain(at(0)), 2},
		{"config only (stopped VM's next start) holds", scsiDomain(), scsiDomain(at(0)), 1},
		{"another controller's target is free here", nil, scsiDomain(otherController), 0},
	}
	for _, c := range cases {
		got, err := FreeSCSITarget(c.live, c.config)
		if err != nil || got != c.want {
			t.Errorf("%s: FreeSCSITarget = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	var full []libvirtxml.DomainDisk
	for i := 0; i <= maxSCSITarget; i++ {
		full = append(full, at(i))
	}
	if _, err := FreeSCSITarget(scsiDomain(full...)); err == nil {
		t.Error("a full controller answered a target")
	}
}
