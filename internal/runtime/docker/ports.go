package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/wire"
)

// portsKey labels a container with the ports published for it, so that an
// agent that starts again publishes them again.
const portsKey = "netloom-ports"

// publisher publishes nodes' ports on the host. A node has no network of
// Docker's (netloom wires its interfaces), so Docker's own publishing has
// nothing to forward to: a listener in the host's namespace forwards each
// connection to the port on the node's loopback, dialled inside the node's
// namespace, as docker-proxy does.
type publisher struct {
	hostNetns string // a path, "" for the agent's own
	log       *slog.Logger

	mu    sync.Mutex
	nodes map[string]*published // by container name
}

// published is one node's listeners.
type published struct {
	ports, sandbox string
	listeners      []net.Listener
}

func newPublisher(hostNetns string, log *slog.Logger) *publisher {
	if hostNetns != "" {
		hostNetns = filepath.Join(netns.Dir, hostNetns)
	}
	return &publisher{hostNetns: hostNetns, log: log, nodes: map[string]*published{}}
}

// publish makes a node's listeners match its ports ("" for none), dialling
// into the namespace at sandbox. Publishing the same again does nothing.
func (p *publisher) publish(container, sandbox, ports string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.nodes[container]; ok {
		if cur.ports == ports && cur.sandbox == sandbox {
			return nil
		}
		cur.close()
		delete(p.nodes, container)
	}
	if ports == "" {
		return nil
	}
	pub := &published{ports: ports, sandbox: sandbox}
	for _, s := range strings.Split(ports, ",") {
		port, err := wire.ParsePort(s)
		if err != nil {
			pub.close()
			return err
		}
		var l net.Listener
		err = netns.Do(p.hostNetns, func() error {
			var err error
			l, err = net.Listen("tcp", net.JoinHostPort(port.HostIP, strconv.Itoa(port.HostPort)))
			return err
		})
		if err != nil {
			pub.close()
			return fmt.Errorf("publish %s: %w", s, err)
		}
		pub.listeners = append(pub.listeners, l)
		go p.serve(l, sandbox, port.Port)
	}
	p.nodes[container] = pub
	return nil
}

// unpublish closes a node's listeners.
func (p *publisher) unpublish(container string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.nodes[container]; ok {
		cur.close()
		delete(p.nodes, container)
	}
}

func (pub *published) close() {
	for _, l := range pub.listeners {
		l.Close()
	}
}

// serve forwards every connection a listener accepts until it is closed.
func (p *publisher) serve(l net.Listener, sandbox string, port int) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("published port stopped", "addr", l.Addr(), "err", err)
			}
			return
		}
		go p.forward(c, sandbox, port)
	}
}

func (p *publisher) forward(c net.Conn, sandbox string, port int) {
	defer c.Close()
	var in net.Conn
	err := netns.Do(sandbox, func() error {
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var d net.Dialer
		in, err = d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		return err
	})
	if err != nil {
		p.log.Debug("published port: node does not answer", "port", port, "err", err)
		return
	}
	defer in.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the half-close on
		}
		done <- struct{}{}
	}
	go pipe(in, c)
	go pipe(c, in)
	<-done
	<-done
}
