package host

import (
	"net/url"
	"testing"
)

func TestPickSocket(t *testing.T) {
	cases := []struct {
		uri, runtimeDir string
		present         []string
		want            string
	}{
		{"qemu:///system", "", []string{"/run/lv/libvirt-sock", "/run/lv/virtqemud-sock"}, "/run/lv/libvirt-sock"},
		{"qemu:///system", "", []string{"/run/lv/virtqemud-sock"}, "/run/lv/virtqemud-sock"},
		{"lxc:///system", "", []string{"/run/lv/virtlxcd-sock", "/run/lv/virtqemud-sock"}, "/run/lv/virtlxcd-sock"},
		{"qemu+unix:///system", "", []string{"/run/lv/virtqemud-sock"}, "/run/lv/virtqemud-sock"},
		{"qemu:///session", "/run/user/1000", []string{"/run/user/1000/libvirt/libvirt-sock"}, "/run/user/1000/libvirt/libvirt-sock"},
		{"qemu:///session", "/run/user/1000", []string{"/run/user/1000/libvirt/virtqemud-sock"}, "/run/user/1000/libvirt/virtqemud-sock"},
		{"qemu:///session", "", []string{"/home/u/.cache/libvirt/libvirt-sock"}, "/home/u/.cache/libvirt/libvirt-sock"},
		{"qemu:///system", "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.uri+" "+c.want, func(t *testing.T) {
			env := socketEnv{RunDir: "/run/lv", RuntimeDir: c.runtimeDir, Home: "/home/u",
				Exists: func(p string) bool {
					for _, q := range c.present {
						if p == q {
							return true
						}
					}
					return false
				}}
			u, _ := url.Parse(c.uri)
			got, tried := pickSocket(u, env)
			if got != c.want {
				t.Errorf("pickSocket(%s) = %q (tried %v), want %q", c.uri, got, tried, c.want)
			}
		})
	}
}

func TestDialerForLeavesRemoteAndExplicitSocketsToGoLibvirt(t *testing.T) {
	for _, uri := range []string{"qemu+tcp://10.0.0.5/system", "qemu+ssh://u@h/system", "qemu+unix:///system?socket=/x/sock", "qemu+tls://h/system"} {
		u, _ := url.Parse(uri)
		if d, _, err := dialerFor(u); d != nil || err != nil {
			t.Errorf("dialerFor(%s) = %v, %v; want go-libvirt's own URI handling", uri, d, err)
		}
	}
}
