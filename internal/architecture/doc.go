// Package architecture holds no code: its test enforces the shape of the
// module (which packages may import libvirt's and Docker's client
// libraries, that the CPI layer imports no runtime, and that no package
// grows past a share of the module's lines).
package architecture
