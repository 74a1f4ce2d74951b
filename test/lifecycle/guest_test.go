package lifecycle

import (
	"encoding/json"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

type report = guestcheck.Report

func raw(r report) string {
	b, _ := json.Marshal(r)
	return string(b)
}
