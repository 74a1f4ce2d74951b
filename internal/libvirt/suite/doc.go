// Package suite tests the libvirt runtime against a real libvirtd
// (BOSH_LIBVIRT_CPI_URI, e.g. qemu:///system) through its public methods,
// looking at what it did through a connection of the suite's own; each
// test has its own storage pool, store dir and, when it asks, network.
package suite
