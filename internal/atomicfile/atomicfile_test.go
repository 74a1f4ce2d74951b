package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		old  string // "" means no file before
		data string
		mode os.FileMode
	}{
		{name: "new file", data: `{"a":1}`, mode: 0o600},
		{name: "replaces a longer file whole", old: `{"a":1,"b":2,"c":3}`, data: `{}`, mode: 0o600},
		{name: "mode of the new file", old: "x", data: "y", mode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.json")
			if tt.old != "" {
				if err := os.WriteFile(path, []byte(tt.old), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, []byte(tt.data), tt.mode); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.data {
				t.Fatalf("content %q (%v), want %q", got, err, tt.data)
			}
			info, _ := os.Stat(path)
			if info.Mode().Perm() != tt.mode {
				t.Errorf("mode %v, want %v", info.Mode().Perm(), tt.mode)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d entries in the directory, want the file alone", len(entries))
			}
		})
	}
}

func TestWriteFailureLeavesOldFileAndNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory where the file's name should go makes the rename fail
	// after the temporary file is written.
	target := filepath.Join(dir, "d")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "inside"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("new"), 0o600); err == nil {
		t.Fatal("Write onto a non-empty directory succeeded")
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("the other file changed: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("entries after the failure: %d, want 2 (no temporary left)", len(entries))
	}
}

// A Write killed before its rename leaves ".<name>.<digits>"; Remove takes
// it with the file and leaves every other name alone.
func TestRemoveTakesKilledWritesTemporaries(t *testing.T) {
	dir := t.TempDir()
	files := map[string]bool{ // name -> removed by Remove(dir/vm-1.json)
		"vm-1.json": true, ".vm-1.json.2206136231": true, ".vm-1.json.7": true,
		"vm-12.json": false, ".vm-12.json.55": false, ".vm-1.json.bak": false, ".vm-1.json.": false, "vm-1.ssh_public_key": false,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Remove(filepath.Join(dir, "vm-1.json")); err != nil {
		t.Fatal(err)
	}
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := os.IsNotExist(err); gone != removed {
			t.Errorf("%s: removed %t; want %t", name, gone, removed)
		}
	}
	if err := Remove(filepath.Join(dir, "vm-1.json")); err != nil {
		t.Errorf("removing again: %v; want nothing to do", err)
	}
	if err := Remove(filepath.Join(dir, "no-such-dir", "x.json")); err != nil {
		t.Errorf("in a directory that is not there: %v", err)
	}
}
