// Package faults lets the guest-truth suite prove it can fail: a binary
// built with `-tags faultinject` breaks one thing on purpose when
// BOSH_LIBVIRT_CPI_FAULTS names it. Without the tag, Active is a constant
// false and the compiler removes every faulty branch.
package faults

// The faults the suite injects.
const (
	// OmitConfigDrive creates VMs without their config drive.
	OmitConfigDrive = "omit-config-drive"
	// WrongDiskCID makes create_disk mint CIDs that are not the disk's
	// /dev/disk/by-id name (the legacy "disk-<uuid>" scheme): the agent
	// then finds no disk by its CID.
	WrongDiskCID = "wrong-disk-cid"
	// WrongSettingsMAC writes agent settings whose MACs differ from the domain's.
	WrongSettingsMAC = "wrong-settings-mac"
	// OmitSettingsFile starts containers without the warden settings file.
	OmitSettingsFile = "omit-settings-file"
	// WrongDiskHint mounts a container's disk at a path other than its
	// hint's, and plugs a SCSI disk at a target other than its hint's
	// volume_id.
	WrongDiskHint = "wrong-disk-hint"
)

// EnvVar selects faults (comma separated) in a faultinject build.
const EnvVar = "BOSH_LIBVIRT_CPI_FAULTS"
