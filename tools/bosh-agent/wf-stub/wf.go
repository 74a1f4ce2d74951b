// Package wf is empty: see go.mod.
package wf
