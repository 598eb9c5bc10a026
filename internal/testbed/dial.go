package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"

	"github.com/vishvananda/netns"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// DialContext opens a connection from inside the host's namespace, so a test
// in the root namespace reaches an agent listening on the host's loopback or
// underlay address. A socket belongs to the namespace it was made in, for
// good, so only the dial itself runs there.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread stays in the host's namespace: leaving it locked makes
		// the runtime discard it when this goroutine ends.
		runtime.LockOSThread()
		ns, err := nlns.Open(h.Netns)
		if err != nil {
			res <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			res <- result{nil, fmt.Errorf("enter netns %s: %w", h.Netns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		res <- result{c, err}
	}()
	r := <-res
	return r.c, r.err
}

// HTTPClient returns a client whose connections start inside the host.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
}
