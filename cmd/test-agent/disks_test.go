package main

import (
	"reflect"
	"testing"
)

func TestByIDLinks(t *testing.T) {
	cases := []struct {
		name string
		disk blockDisk
		want map[string]string
	}{
		{"virtio disk with a partition",
			blockDisk{Name: "vdc", Serial: "dc86ab4cf5c13b2038e3", Partitions: map[int]string{1: "vdc1"}},
			map[string]string{"virtio-dc86ab4cf5c13b2038e3": "vdc", "virtio-dc86ab4cf5c13b2038e3-part1": "vdc1"}},
		{"partitions in number order",
			blockDisk{Name: "vdb", Serial: "s", Partitions: map[int]string{2: "vdb2", 1: "vdb1"}},
			map[string]string{"virtio-s": "vdb", "virtio-s-part1": "vdb1", "virtio-s-part2": "vdb2"}},
		{"virtio disk without a serial", blockDisk{Name: "vdd", Partitions: map[int]string{}}, map[string]string{}},
		{"not virtio: udev names those another way", blockDisk{Name: "sda", Serial: "x", Partitions: map[int]string{}}, map[string]string{}},
	}
	for _, tc := range cases {
		if got := tc.disk.byIDLinks(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestDiskNamePattern(t *testing.T) {
	cases := map[string]bool{"vda": true, "vdaa": true, "sdb": true, "xvdc": true,
		"vda1": false, "sr0": false, "loop0": false, "ram0": false, "nvme0n1": false}
	for name, want := range cases {
		if got := diskNamePattern.MatchString(name); got != want {
			t.Errorf("%s: %t; want %t", name, got, want)
		}
	}
}

func TestPartitionDevice(t *testing.T) {
	cases := []struct {
		disk string
		n    int
		want string
	}{{"vdc", 1, "vdc1"}, {"sdaa", 2, "sdaa2"}}
	for _, tc := range cases {
		if got := partitionDevice(tc.disk, tc.n); got != tc.want {
			t.Errorf("partitionDevice(%q, %d) = %q; want %q", tc.disk, tc.n, got, tc.want)
		}
	}
}

func TestMarkerJSON(t *testing.T) {
	cases := map[string]string{
		`{"by_id":["a"]}` + "\n": `{"by_id":["a"]}`,
		"written by hand\n":      `"written by hand"`,
		"":                       `""`,
	}
	for in, want := range cases {
		if got := string(markerJSON([]byte(in))); got != want {
			t.Errorf("markerJSON(%q) = %s; want %s", in, got, want)
		}
	}
}

func TestDiffDisks(t *testing.T) {
	disk := func(name, seq string) blockDisk { return blockDisk{Name: name, Seq: seq} }
	cases := []struct {
		name           string
		known          map[string]string
		disks          []blockDisk
		appeared, gone []string
		knownAfter     map[string]string
	}{
		{"a new disk appears", map[string]string{},
			[]blockDisk{disk("sdc", "7")}, []string{"sdc"}, nil, map[string]string{"sdc": "7"}},
		{"excluded disks are never reported", map[string]string{},
			[]blockDisk{disk("sda", "1"), disk("sr0", "2")}, nil, nil, map[string]string{}},
		{"a disk that stays is not reported again", map[string]string{"sdc": "7"},
			[]blockDisk{disk("sdc", "7")}, nil, nil, map[string]string{"sdc": "7"}},
		{"a disk that went is gone", map[string]string{"sdc": "7"},
			nil, nil, []string{"sdc"}, map[string]string{}},
		{"unplugged and plugged again between two polls: the name is both", map[string]string{"sdc": "7"},
			[]blockDisk{disk("sdc", "9")}, []string{"sdc"}, []string{"sdc"}, map[string]string{"sdc": "9"}},
		{"a kernel without diskseq: by name alone", map[string]string{"vdc": ""},
			[]blockDisk{disk("vdc", ""), disk("vdd", "")}, []string{"vdd"}, nil, map[string]string{"vdc": "", "vdd": ""}},
	}
	for _, tc := range cases {
		disks := map[string]blockDisk{}
		for _, d := range tc.disks {
			disks[d.Name] = d
		}
		appeared, gone := diffDisks(tc.known, disks, map[string]bool{"sda": true, "sr0": true})
		if !reflect.DeepEqual(appeared, tc.appeared) || !reflect.DeepEqual(gone, tc.gone) || !reflect.DeepEqual(tc.known, tc.knownAfter) {
			t.Errorf("%s: appeared %v, gone %v, known %v; want %v, %v, %v", tc.name, appeared, gone, tc.known, tc.appeared, tc.gone, tc.knownAfter)
		}
	}
}
