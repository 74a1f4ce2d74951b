module github.com/bosh-libvirt-cpi/bosh-libvirt-cpi

go 1.26.8

require (
	github.com/cloudfoundry/bosh-cpi-go v0.0.0-20230608150715-1e134ab6c93b
	github.com/cloudfoundry/bosh-utils v0.0.642
	github.com/digitalocean/go-libvirt v0.0.0-20261013170128-efbbdf578ac8
	github.com/google/uuid v1.6.0
	github.com/kdomanski/iso9660 v0.4.0
	github.com/klauspost/compress v1.18.0
	golang.org/x/crypto v0.55.0
	golang.org/x/sys v0.47.0
	gopkg.in/yaml.v3 v3.0.1
	libvirt.org/go/libvirtxml v1.12001.0
)

require github.com/kr/pretty v0.3.1 // indirect
