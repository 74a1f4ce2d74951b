// Package host is the libvirt host as the CPI reaches it: which socket or
// transport a URI means and how to dial it (starting a session daemon as
// libvirt's client does), what the host offers (capabilities, the domain
// type to use), whether it is ready (cpi doctor's probe), and how its
// errors map to the CPI's sentinels.
package host
