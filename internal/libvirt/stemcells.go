package libvirt

import "github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"

import "fmt"

import "context"

// DeleteStemcell removes the stemcell volume. It refuses while a VM of
// ours still uses it as the backing file of its root disk: deleting it
// would leave that VM unable to start again.
func (b *Backend) DeleteStemcell(ctx context.Context, cid string) error {
	if b.containers() {
		return b.deleteRootfsStemcell(cid)
	}
	// A volume without our record is not ours: it stays, and looks absent.
	sc, err := b.ownedStemcell(ctx, cid)
	if err != nil {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, err)
	}
	vol := sc.Vol
	users, err := b.vmsUsingStemcell(cid)
	if err != nil {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("deleting stemcell '%s': still the base of the root disk of VMs %v: %w", cid, users, cpierr.ErrInUse)
	}
	// Gone meanwhile is what we wanted.
	if err := b.DeleteVolume(vol); err != nil && !cpierr.IsNotFound(err) {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, err)
	}
	if err := b.DeleteMeta(ctx, cid); err != nil {
		return fmt.Errorf("deleting stemcell '%s': data deleted, but %w", cid, err)
	}
	b.log.Info("deleted stemcell", "stemcell", cid)
	return nil
}

// vmsUsingStemcell names our domains whose marker records stemcell cid.
func (b *Backend) vmsUsingStemcell(cid string) ([]string, error) {
	domains, err := b.ownedDomains()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, dom := range domains {
		if dom.marker.StemcellCID == cid {
			users = append(users, dom.Name)
		}
	}
	return users, nil
}
