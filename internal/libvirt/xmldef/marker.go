package xmldef

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// MetadataNS marks libvirt objects this CPI created. A domain without our
// element in its <metadata> is never touched, whatever its name.
const (
	MetadataNS     = "https://github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/vm/1"
	MetadataPrefix = "boshcpi"
)

// Marker is our element inside a domain's <metadata>. Its presence (in
// namespace MetadataNS) is what makes a domain ours. It carries only
// non-secret facts: agent settings and passwords never go here, because
// anyone with read-only access to libvirt can read domain XML.
//
// libvirt hands the element back from DomainGetMetadata without its
// namespace (the namespace was the lookup key), so parsing accepts any;
// marshal always writes MetadataNS.
type Marker struct {
	XMLName     xml.Name `xml:"vm"`
	AgentID     string   `xml:"agent_id"`
	StemcellCID string   `xml:"stemcell"`
	// Firmware ("efi" or "bios") and Delivery (a hypervisor.Delivery) are
	// how the VM boots and reads its settings, decided at create_vm from
	// its stemcell; empty on VMs made before they were recorded.
	Firmware string `xml:"firmware,omitempty"`
	Delivery string `xml:"delivery,omitempty"`
	// DiskBus is "scsi" on a QEMU VM whose disks sit on the virtio-scsi
	// controller (hypervisor.QEMUvSphere); empty for virtio-blk, also on
	// vSphere-stemcell VMs made before their disks moved to SCSI.
	DiskBus string      `xml:"disk_bus,omitempty"`
	Tags    []MarkerTag `xml:"tag,omitempty"`
}

// MarkerTag is one key of set_vm_metadata.
type MarkerTag struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

// markerElementName is the local name of Marker's element.
const markerElementName = "vm"

func (m Marker) Marshal() (string, error) {
	var out strings.Builder
	start := xml.StartElement{Name: xml.Name{Space: MetadataNS, Local: markerElementName}}
	if err := xml.NewEncoder(&out).EncodeElement(m, start); err != nil {
		return "", fmt.Errorf("building metadata element: %w", err)
	}
	return out.String(), nil
}

func ParseMarker(doc string) (Marker, error) {
	var m Marker
	if err := xml.Unmarshal([]byte(doc), &m); err != nil {
		return Marker{}, fmt.Errorf("parsing metadata element: %w", err)
	}
	return m, nil
}
