package testbed

import (
	"context"
	"net"
	"net/http"
	"path/filepath"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// DialContext opens a connection from inside the host's namespace, so a test
// in the root namespace reaches an agent listening on the host's loopback or
// underlay address. A socket belongs to the namespace it was made in, for
// good, so only the dial itself runs there.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := nlns.Do(filepath.Join(nlns.Dir, h.Netns), func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections start inside the host.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
}

// Listen opens a listener inside the host's namespace, for a test that
// plays a part of the host itself (an agent that never answers).
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := nlns.Do(filepath.Join(nlns.Dir, h.Netns), func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Hang accepts connections on ln and never answers them, as a hung agent
// does, until the test ends. The channel it returns receives once per
// connection accepted, when someone is listening.
func Hang(t TB, ln net.Listener) <-chan struct{} {
	accepted := make(chan struct{})
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn) // held open, never answered
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, conn := range conns {
			conn.Close()
		}
	})
	return accepted
}
