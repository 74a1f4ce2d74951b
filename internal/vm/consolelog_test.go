package vm

import (
	"testing"
	"time"
)

func TestKeptConsoleLogNames(t *testing.T) {
	cid := NewCID()
	at := time.Date(2026, 12, 1, 23, 4, 5, 678e6, time.FixedZone("x", 3600))
	name := KeptConsoleLogName(cid, at)
	if want := cid + "-20261201T220405.678Z.log"; name != want {
		t.Fatalf("KeptConsoleLogName = %q; want %q", name, want)
	}
	if got, ok := KeptConsoleLogTime(name); !ok || !got.Equal(at) {
		t.Fatalf("KeptConsoleLogTime(%q) = %v, %v; want %v", name, got, ok, at)
	}
	for _, other := range []string{cid + ".log", "notes.txt", "vm-1-20261201T220405.678Z.log", cid + "-20261201T220405Z.log", cid + "-20261201T220405.678Z.log.gz"} {
		if _, ok := KeptConsoleLogTime(other); ok {
			t.Errorf("KeptConsoleLogTime(%q) accepted a name the CPI never gives a kept log", other)
		}
	}
}
