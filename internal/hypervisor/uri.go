package hypervisor

import "net/url"

// URI is the libvirt URI of this profile's driver on host over transport
// ("" for this machine): vbox:///session, xen+ssh://root@h/system,
// vmwarews+tls://h/session. A profile that takes any path gets /system.
func (p Profile) URI(host, transport string) string {
	path := p.URIPath
	if path == "" {
		path = "/system"
	}
	scheme := p.Driver
	if transport != "" {
		scheme += "+" + transport
	}
	// host may carry a user (root@h): it goes in as written.
	return scheme + "://" + host + path
}

// uriPath is the path of a libvirt URI ("" when it does not parse).
func uriPath(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return u.Path
}
