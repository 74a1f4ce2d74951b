// Package configdrive writes the config drive an OpenStack stemcell's agent
// reads: an ISO9660 image labelled config-2 with the EC2 and OpenStack
// layouts of user data and meta data.
package configdrive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/kdomanski/iso9660"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
)

// Label is the filesystem label the agent (and cloud-init) look for.
const Label = "config-2"

// Paths inside the drive. The agent reads the ec2 pair; OpenStack's own
// layout is written too so other tools find the same data.
const (
	EC2UserData       = "ec2/latest/user-data"
	EC2MetaData       = "ec2/latest/meta-data.json"
	OpenStackUserData = "openstack/latest/user_data"
	OpenStackMetaData = "openstack/latest/meta_data.json"
)

// Build returns the ISO image for the settings and meta data.
func Build(settings agentsettings.Settings, meta agentsettings.MetaData) ([]byte, error) {
	userData, err := json.Marshal(settings)
	if err != nil {
		return nil, fmt.Errorf("encoding agent settings: %w", err)
	}
	metaData, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encoding meta data: %w", err)
	}
	return buildISO(map[string][]byte{
		EC2UserData:       userData,
		EC2MetaData:       metaData,
		OpenStackUserData: userData,
		OpenStackMetaData: metaData,
	})
}

func buildISO(files map[string][]byte) ([]byte, error) { return buildISOLabelled(files, Label) }

func buildISOLabelled(files map[string][]byte, label string) ([]byte, error) {
	// The writer stages files in a private temporary directory (0700) and
	// Cleanup removes it: the settings hold the mbus password.
	w, err := iso9660.NewWriter()
	if err != nil {
		return nil, fmt.Errorf("creating ISO writer: %w", err)
	}
	defer w.Cleanup()
	for name, data := range files {
		if err := w.AddFile(bytes.NewReader(data), name); err != nil {
			return nil, fmt.Errorf("adding %s to the config drive: %w", name, err)
		}
	}
	var out bytes.Buffer
	if err := w.WriteTo(&out, label); err != nil {
		return nil, fmt.Errorf("writing config drive image: %w", err)
	}
	return out.Bytes(), nil
}

// ReadUserData returns ec2/latest/user-data from an ISO made by Build, for
// rewriting the settings of stemcells without API v2.
func ReadUserData(iso []byte) ([]byte, error) { return ReadFile(iso, "ec2", "latest", "user-data") }

// ReadFile returns the file at path (one name per directory level).
func ReadFile(iso []byte, path ...string) ([]byte, error) {
	img, err := iso9660.OpenImage(bytes.NewReader(iso))
	if err != nil {
		return nil, fmt.Errorf("opening config drive image: %w", err)
	}
	root, err := img.RootDir()
	if err != nil {
		return nil, fmt.Errorf("reading config drive root: %w", err)
	}
	f, err := find(root, path...)
	if err != nil {
		return nil, err
	}
	buf := new(bytes.Buffer)
	if _, err := buf.ReadFrom(f.Reader()); err != nil {
		return nil, fmt.Errorf("reading %s: %w", strings.Join(path, "/"), err)
	}
	return buf.Bytes(), nil
}

func find(dir *iso9660.File, names ...string) (*iso9660.File, error) {
	current := dir
	for _, name := range names {
		children, err := current.GetChildren()
		if err != nil {
			return nil, fmt.Errorf("listing config drive: %w", err)
		}
		var next *iso9660.File
		for _, c := range children {
			if c.Name() == name {
				next = c
				break
			}
		}
		if next == nil {
			return nil, fmt.Errorf("config drive has no %s: %w", name, os.ErrNotExist)
		}
		current = next
	}
	return current, nil
}

// EnvFile is the file of an env disc: bosh-agent's CDROM settings source
// (vSphere and VirtualBox stemcells, {"Type": "CDROM", "FileName": "env"})
// mounts /dev/sr0 and reads it as the settings JSON. Without Rock Ridge the
// disc records it as ENV, which Linux's isofs shows as env.
const EnvFile = "env"

// EnvLabel is the env disc's volume label: anything but config-2, which
// would make an agent take the disc for a config drive.
const EnvLabel = "BOSH_ENV"

// BuildEnvDisc returns the ISO image of an env disc holding settings.
func BuildEnvDisc(settings agentsettings.Settings) ([]byte, error) {
	env, err := json.Marshal(settings)
	if err != nil {
		return nil, fmt.Errorf("encoding agent settings: %w", err)
	}
	return buildISOLabelled(map[string][]byte{EnvFile: env}, EnvLabel)
}
