// Package wf stands in for inet.af/wf, the Windows Filtering Platform
// bindings bosh-agent uses only in its Windows build.
package wf
