// Package xmldef translates what the runtime decided into libvirt's XML
// (libvirtxml types, never hand-written text) and back: domain
// definitions built from a Plan, disk devices and lookups by serial or
// source, the ownership marker in a domain's metadata, network and backup
// documents. It makes no libvirt calls, so every document is testable
// without a daemon.
package xmldef
