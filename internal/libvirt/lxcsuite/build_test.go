//go:build !faultinject

package lxcsuite

import "testing"

// The suite's fault tests exist only in a faultinject build: a run
// without the tag would prove less than it seems to.
func TestBuiltWithFaultInjection(t *testing.T) {
	t.Fatal("run this suite with -tags faultinject (scripts/test.sh does): its fault injection tests are missing")
}
