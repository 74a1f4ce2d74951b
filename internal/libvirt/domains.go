package libvirt

import (
	"errors"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
)

// lookupOwnedDomain finds the domain named cid and checks it carries our
// marker. A missing domain and a domain that is not ours are both
// ErrNotFound: a foreign domain must look absent to every CPI method.
func (b *Backend) lookupOwnedDomain(cid string) (golibvirt.Domain, error) {
	dom, _, err := b.lookupOwnedDomainMarker(cid)
	return dom, err
}

// lookupOwnedDomainMarker is lookupOwnedDomain that also returns the
// marker it read to check ownership.
func (b *Backend) lookupOwnedDomainMarker(cid string) (golibvirt.Domain, xmldef.Marker, error) {
	dom, err := b.conn.DomainLookupByName(cid)
	if err != nil {
		return golibvirt.Domain{}, xmldef.Marker{}, fmt.Errorf("looking up domain '%s': %w", cid, host.Classify(err))
	}
	marker, err := b.readMarker(dom)
	if errors.Is(err, errNoMarker) {
		return golibvirt.Domain{}, xmldef.Marker{}, fmt.Errorf("domain '%s' exists but was not created by this CPI (no metadata in namespace %s): %w", cid, xmldef.MetadataNS, cpierr.ErrNotFound)
	}
	if err != nil {
		return golibvirt.Domain{}, xmldef.Marker{}, err
	}
	return dom, marker, nil
}

var errNoMarker = errors.New("no metadata element of this CPI")

// readMarker returns our metadata element of dom (errNoMarker if absent).
// It reads the persistent definition when there is one, so that a live
// change not yet written to config never hides the marker.
func (b *Backend) readMarker(dom golibvirt.Domain) (xmldef.Marker, error) {
	doc, err := b.conn.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement),
		golibvirt.OptString{xmldef.MetadataNS}, golibvirt.DomainAffectCurrent)
	if err != nil {
		if host.IsCode(err, golibvirt.ErrNoDomainMetadata) {
			return xmldef.Marker{}, errNoMarker
		}
		return xmldef.Marker{}, fmt.Errorf("reading metadata of domain '%s': %w", dom.Name, host.Classify(err))
	}
	m, err := xmldef.ParseMarker(doc)
	if err != nil {
		return xmldef.Marker{}, fmt.Errorf("domain '%s': %w", dom.Name, err)
	}
	return m, nil
}

// domainDefinition returns dom's XML as libvirtxml types. Pass
// golibvirt.DomainXMLInactive for the persistent (next boot) definition.
func (b *Backend) domainDefinition(dom golibvirt.Domain, flags golibvirt.DomainXMLFlags) (*libvirtxml.Domain, error) {
	doc, err := b.conn.DomainGetXMLDesc(dom, flags)
	if err != nil {
		return nil, fmt.Errorf("reading XML of domain '%s': %w", dom.Name, host.Classify(err))
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parsing XML of domain '%s': %w", dom.Name, err)
	}
	return &def, nil
}

// domainIsRunning tells whether dom has a QEMU process (running, paused,
// shutting down...): the states in which it must be destroyed before it
// can be removed and in which device changes apply live.
func (b *Backend) domainIsRunning(dom golibvirt.Domain) (bool, error) {
	active, err := b.conn.DomainIsActive(dom)
	if err != nil {
		return false, fmt.Errorf("reading state of domain '%s': %w", dom.Name, host.Classify(err))
	}
	return active == 1, nil
}

// ownedDomain is a domain of ours with the marker that showed it is ours.
type ownedDomain struct {
	golibvirt.Domain
	marker xmldef.Marker
}

// ownedDomains lists every domain (running or not) that carries our
// marker. A domain that vanishes while we look is skipped.
func (b *Backend) ownedDomains() ([]ownedDomain, error) {
	all, _, err := b.conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("listing domains: %w", err)
	}
	var owned []ownedDomain
	for _, dom := range all {
		marker, err := b.readMarker(dom)
		switch {
		case errors.Is(err, errNoMarker), cpierr.IsNotFound(err):
			continue
		case err != nil:
			return nil, err
		}
		owned = append(owned, ownedDomain{Domain: dom, marker: marker})
	}
	return owned, nil
}
