package guestcheck

import (
	"fmt"
	"strings"
)

// VirtioByIDNames are the /dev/disk/by-id names udev's persistent-storage
// rules give a virtio-blk disk with the given serial (its sysfs "serial"
// attribute) and partition numbers: "virtio-<serial>" for the disk and
// "virtio-<serial>-part<N>" for each partition. A disk without a serial
// gets none.
func VirtioByIDNames(serial string, partitions []int) []string {
	id := SafeUdevName(serial)
	if id == "" {
		return nil
	}
	names := []string{"virtio-" + id}
	for _, n := range partitions {
		names = append(names, fmt.Sprintf("virtio-%s-part%d", id, n))
	}
	return names
}

// SafeUdevName is what udev makes of a serial before using it in a link
// name: surrounding whitespace dropped, inner runs of whitespace made one
// '_', and every character outside [A-Za-z0-9#+-.:=@_] made '_'.
func SafeUdevName(s string) string {
	var b strings.Builder
	for i, field := range strings.Fields(s) {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, r := range field {
			if udevAllowed(r) {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

func udevAllowed(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("#+-.:=@_", r)
}
