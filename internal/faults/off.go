//go:build !faultinject

package faults

// Active is false in every normal build.
func Active(string) bool { return false }
