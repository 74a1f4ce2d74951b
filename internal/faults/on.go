//go:build faultinject

package faults

import (
	"os"
	"strings"
)

// Active tells whether the fault is selected through EnvVar.
func Active(name string) bool {
	for _, f := range strings.Split(os.Getenv(EnvVar), ",") {
		if strings.TrimSpace(f) == name {
			return true
		}
	}
	return false
}
