package guestcheck

import (
	"reflect"
	"testing"
)

func TestVirtioByIDNames(t *testing.T) {
	cases := []struct {
		serial     string
		partitions []int
		want       []string
	}{
		{serial, nil, []string{"virtio-" + serial}},
		{serial, []int{1, 2}, []string{"virtio-" + serial, "virtio-" + serial + "-part1", "virtio-" + serial + "-part2"}},
		{"", []int{1}, nil},
		{"   ", nil, nil},
		{" my disk\t01 \n", nil, []string{"virtio-my_disk_01"}},
		{"a/b*c", nil, []string{"virtio-a_b_c"}},
		{"ok#+-.:=@_", nil, []string{"virtio-ok#+-.:=@_"}},
	}
	for _, tc := range cases {
		if got := VirtioByIDNames(tc.serial, tc.partitions); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("VirtioByIDNames(%q, %v) = %v; want %v", tc.serial, tc.partitions, got, tc.want)
		}
	}
}

func TestParseReports(t *testing.T) {
	console := "SeaBIOS\r\n" +
		"TEST-AGENT {\"event\":\"settings\",\"agent_id\":\"a1\"}\r\n" +
		"[    3.1] noise TEST-AGENT {\"event\":\"disk\",\"by_id\":[\"virtio-x\"],\"device\":\"/dev/vdc\",\"marker\":{\"by_id\":[\"virtio-x\"]}}\n" +
		"TEST-AGENT {broken\n" +
		"plain line\n"
	got := ParseReports(console)
	if len(got) != 2 {
		t.Fatalf("got %d reports, want 2: %+v", len(got), got)
	}
	if got[0].Event != EventSettings || got[0].AgentID != "a1" {
		t.Errorf("first report %+v", got[0])
	}
	if got[1].Device != "/dev/vdc" || string(got[1].Marker) != `{"by_id":["virtio-x"]}` {
		t.Errorf("second report %+v", got[1])
	}
}
