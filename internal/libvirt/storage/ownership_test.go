package storage

import (
	"testing"
	"time"
)

func TestCreationRecordNames(t *testing.T) {
	at := time.Unix(1796200000, 0)
	tests := []struct {
		name    string
		wantCID string
		ok      bool
	}{
		{CreatingVolumeName("vm-0b7f3c2e-1111-2222-3333-444444444444", at), "vm-0b7f3c2e-1111-2222-3333-444444444444", true},
		{CreatingVolumeName("virtio-abcdefghijklm", at), "virtio-abcdefghijklm", true},
		{"virtio-abcdefghijklm", "", false},
		{"virtio-abcdefghijklm.meta", "", false},
		{"vm-x-root", "", false},
		{"vm-x.creating-", "", false},
		{"vm-x.creating-12ab", "", false},
		{".creating-1796200000", "", false},
		{"a.b.creating-1796200000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cid, since, ok := ParseCreatingVolumeName(tt.name)
			if ok != tt.ok || cid != tt.wantCID || (ok && !since.Equal(at)) {
				t.Errorf("ParseCreatingVolumeName(%q) = %q, %v, %v; want %q, %v, %v", tt.name, cid, since, ok, tt.wantCID, at, tt.ok)
			}
		})
	}
}

func TestLegacySidecarDecodesWithoutOwner(t *testing.T) {
	doc, err := decodeMeta([]byte(`{"version":1,"metadata":{"a":"b"}}    `))
	if err != nil || doc.Owner != nil || doc.Metadata["a"] != "b" {
		t.Fatalf("decoded %+v, %v", doc, err)
	}
	raw, err := encodeMeta(MetaDocument{Owner: NewOwner(KindDisk)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeMeta(raw)
	if err != nil || back.Version != 2 || back.Owner == nil || back.Owner.Kind != KindDisk || back.Owner.CreatedAt.IsZero() {
		t.Fatalf("round trip of an owner record: %+v, %v", back, err)
	}
}
