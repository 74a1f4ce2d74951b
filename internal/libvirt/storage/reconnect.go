package storage

import (
	"context"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// undoReconnectWait bounds how long an undo waits for a libvirtd that went
// away mid-call (a restart) to answer again.
const undoReconnectWait = 30 * time.Second

// OnReconnect registers who else holds the connection: it gets the new one.
func (b *Pool) OnReconnect(follow func(*golibvirt.Libvirt)) { b.onReconnect = follow }

// ReconnectIfLost replaces a connection libvirtd dropped (it restarted
// mid-call) with a new one, so the undo that follows can remove what the
// call made instead of failing on the dead one.
func (b *Pool) ReconnectIfLost(ctx context.Context) {
	// The listener may not have noticed yet: a call proves it.
	if _, err := b.conn.ConnectGetLibVersion(); err == nil && b.conn.IsConnected() {
		return
	}
	deadline := time.Now().Add(undoReconnectWait)
	for {
		conn, _, err := host.Connect(ctx, b.cfg)
		if err == nil {
			b.conn = conn
			if b.onReconnect != nil {
				b.onReconnect(conn)
			}
			b.log.Info("reconnected to libvirt to remove what the failed call made")
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.log.Error("libvirt connection lost and not back: what the failed call made stays", "error", err)
			return
		}
		time.Sleep(time.Second)
	}
}

// undoBusyWait bounds how long an undo waits for libvirtd to finish
// building a volume whose creating call was cut off.
const undoBusyWait = time.Minute

// volumeBusy tells whether libvirtd refused a deletion only because the
// volume is still being built.
func volumeBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "still being allocated") || strings.Contains(msg, "asynchronous jobs running")
}
