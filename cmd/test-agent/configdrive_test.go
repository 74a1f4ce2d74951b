package main

import (
	"bytes"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/configdrive"
)

func fatBootSector(fatType string, labelAt int, label string) []byte {
	img := make([]byte, 4096)
	copy(img[labelAt:labelAt+11], []byte(label + "           ")[:11])
	switch fatType {
	case "FAT32":
		copy(img[82:], "FAT32   ")
	default:
		copy(img[54:], fatType+"   ")
	}
	img[510], img[511] = 0x55, 0xAA
	return img
}

func isoWithVolumeID(id string) []byte {
	img := make([]byte, isoDescriptorOffset+2048)
	pvd := img[isoDescriptorOffset:]
	pvd[0] = 1
	copy(pvd[1:6], "CD001")
	copy(pvd[40:72], []byte(id + "                                ")[:32])
	return img
}

func TestFilesystemLabel(t *testing.T) {
	cases := []struct {
		name       string
		img        []byte
		wantLabel  string
		wantFSType string
		wantOK     bool
		wantConfig bool
	}{
		{"iso9660", isoWithVolumeID("config-2"), "config-2", "iso9660", true, true},
		{"iso9660 upper case", isoWithVolumeID("CONFIG-2"), "CONFIG-2", "iso9660", true, true},
		{"iso9660 other label", isoWithVolumeID("cidata"), "cidata", "iso9660", true, false},
		{"vfat FAT16", fatBootSector("FAT16", 43, "config-2"), "config-2", "vfat", true, true},
		{"vfat FAT12 upper case", fatBootSector("FAT12", 43, "CONFIG-2"), "CONFIG-2", "vfat", true, true},
		{"vfat FAT32", fatBootSector("FAT32", 71, "config-2"), "config-2", "vfat", true, true},
		{"label is compared exactly", isoWithVolumeID("Config-2"), "Config-2", "iso9660", true, false},
		{"blank disk", make([]byte, 64*1024), "", "", false, false},
		{"too short to hold anything", make([]byte, 100), "", "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			label, fstype, ok := filesystemLabel(bytes.NewReader(tc.img))
			if label != tc.wantLabel || fstype != tc.wantFSType || ok != tc.wantOK {
				t.Errorf("filesystemLabel = %q, %q, %t; want %q, %q, %t", label, fstype, ok, tc.wantLabel, tc.wantFSType, tc.wantOK)
			}
			if got := ok && isConfigDriveLabel(label); got != tc.wantConfig {
				t.Errorf("config drive = %t; want %t", got, tc.wantConfig)
			}
		})
	}
}

// The drive the CPI writes is the one this agent recognises.
func TestFilesystemLabelOfTheCPIsConfigDrive(t *testing.T) {
	s := agentsettings.New("agent-1", "vm-1", config.Agent{Mbus: "https://mbus:p@0.0.0.0:6868"}, nil)
	iso, err := configdrive.Build(s, agentsettings.NewMetaData("vm-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	label, fstype, ok := filesystemLabel(bytes.NewReader(iso))
	if !ok || fstype != "iso9660" || !isConfigDriveLabel(label) {
		t.Fatalf("the CPI's config drive reads as label %q type %q (found %t)", label, fstype, ok)
	}
}
