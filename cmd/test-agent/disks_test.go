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
