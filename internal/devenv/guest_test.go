package devenv

import "testing"

func TestOtherConsoleLines(t *testing.T) {
	cases := []struct {
		name, console string
		n             int
		want          string
	}{
		{"only reports", "TEST-AGENT {\"event\":\"nic\"}\n", 3, "  (nothing)\n"},
		{"kernel lines kept, reports and blanks dropped",
			"[ 1.0] sd 0:0:2:0: attached\nTEST-AGENT {\"event\":\"disk\"}\n\n[ 2.0] virtio_scsi: not found\n", 3,
			"  [ 1.0] sd 0:0:2:0: attached\n  [ 2.0] virtio_scsi: not found\n"},
		{"the last n", "a\nb\nc\nd\n", 2, "  c\n  d\n"},
	}
	for _, tc := range cases {
		if got := otherConsoleLines(tc.console, tc.n); got != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}
