package underlay

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/wire"
)

// smallSize is the outer size of the probe that tells a blocked port from
// a short path.
const smallSize = 128

// Config says where and how a prober checks.
type Config struct {
	// DataIP is the host's underlay address, where tunnels start.
	DataIP netip.Addr
	// Port is the VXLAN UDP port.
	Port int
	// HostNetns is the host's namespace, the one holding DataIP; "" means
	// the caller's.
	HostNetns string
	// ProbeNetns is the name of the probe namespace (ident.UnderlayNamespaceName).
	ProbeNetns string
	// Timeout bounds one probe: a probe not answered within it failed.
	Timeout time.Duration
}

// Peer is a host this one shares cross-host links with.
type Peer struct {
	IP netip.Addr
	// LinkMTU is the largest MTU of the links to it.
	LinkMTU int
}

// Prober checks the underlay to peers.
type Prober struct {
	cfg Config
	log *slog.Logger
	// id marks this prober's echo requests among every ICMP message a raw
	// socket sees.
	id int

	// mu serialises checks: one probe namespace, one set of peers in it.
	mu sync.Mutex
}

// New returns a prober; it touches nothing until the first check.
func New(cfg Config, log *slog.Logger) (*Prober, error) {
	if !cfg.DataIP.Is4() {
		return nil, fmt.Errorf("underlay prober: data ip %s: want IPv4", cfg.DataIP)
	}
	if cfg.Port <= 0 || cfg.Port > 65535 || cfg.ProbeNetns == "" || cfg.Timeout <= 0 {
		return nil, fmt.Errorf("underlay prober: port %d, probe netns %q, timeout %v: want all set", cfg.Port, cfg.ProbeNetns, cfg.Timeout)
	}
	return &Prober{cfg: cfg, log: log, id: rand.IntN(1 << 16)}, nil
}

// UnderlayMTU returns the MTU of the interface that holds the data IP.
func (p *Prober) UnderlayMTU() (int, error) {
	mtu := 0
	err := nlns.WithHandle(p.cfg.HostNetns, func(h *netlink.Handle) error {
		addrs, err := nlns.Dump("addresses", func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.cfg.DataIP {
				l, err := h.LinkByIndex(a.LinkIndex)
				if err != nil {
					return fmt.Errorf("find interface of %s: %w", p.cfg.DataIP, err)
				}
				mtu = l.Attrs().MTU
				return nil
			}
		}
		return fmt.Errorf("no interface holds %s", p.cfg.DataIP)
	})
	if err != nil {
		return 0, fmt.Errorf("underlay mtu: %w", err)
	}
	return mtu, nil
}

// Check checks every peer at once and returns one result per peer, in
// order. Its error means nothing could be checked (the probe namespace
// could not be set up); a peer that fails a probe is a result.
func (p *Prober) Check(ctx context.Context, peers []Peer) ([]wire.UnderlayCheck, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(peers) == 0 && !nlns.Exists(p.cfg.ProbeNetns) {
		return nil, nil
	}
	if err := p.ensure(peers); err != nil {
		return nil, fmt.Errorf("set up probe namespace %s: %w", p.cfg.ProbeNetns, err)
	}
	if len(peers) == 0 {
		return nil, nil
	}
	hostPath := ""
	if p.cfg.HostNetns != "" {
		hostPath = filepath.Join(nlns.Dir, p.cfg.HostNetns)
	}
	host, err := listen(hostPath, p.id)
	if err != nil {
		return nil, err
	}
	defer host.close()
	probe, err := listen(filepath.Join(nlns.Dir, p.cfg.ProbeNetns), p.id)
	if err != nil {
		return nil, err
	}
	defer probe.close()
	out := make([]wire.UnderlayCheck, len(peers))
	var wg sync.WaitGroup
	for i, peer := range peers {
		wg.Go(func() { out[i] = p.checkPeer(ctx, host, probe, peer) })
	}
	wg.Wait()
	return out, ctx.Err()
}

// probes are what a peer answered.
type probes struct {
	host  bool // a plain echo on the underlay
	small bool // a small echo through VXLAN
	need  bool // an echo through VXLAN at the size the links need
	path  int  // the largest outer size that passed, when need did not
}

// checkPeer probes one peer: the three first probes at once, then, when
// only the size failed, a search for the size that passes.
func (p *Prober) checkPeer(ctx context.Context, host, probe *pinger, peer Peer) wire.UnderlayCheck {
	need := peer.LinkMTU + wire.VXLANOverhead
	small := min(smallSize, need)
	var r probes
	var wg sync.WaitGroup
	wg.Go(func() { r.host = host.echo(ctx, peer.IP, smallSize-wire.VXLANOverhead, p.cfg.Timeout) })
	wg.Go(func() { r.small = probe.echo(ctx, peer.IP, small-wire.VXLANOverhead, p.cfg.Timeout) })
	wg.Go(func() { r.need = probe.echo(ctx, peer.IP, need-wire.VXLANOverhead, p.cfg.Timeout) })
	wg.Wait()
	r.small = r.small || r.need // what passes large passes small: the small ones were lost
	if r.small && !r.need {
		r.path = search(small, need, func(sizes []int) []bool {
			ok := make([]bool, len(sizes))
			var wg sync.WaitGroup
			for i, s := range sizes {
				wg.Go(func() { ok[i] = probe.echo(ctx, peer.IP, s-wire.VXLANOverhead, p.cfg.Timeout) })
			}
			wg.Wait()
			return ok
		})
	}
	c := classify(peer.IP, need, p.cfg.Port, r)
	c.CheckedAt = time.Now().UTC()
	return c
}

// classify turns what a peer answered into its result.
func classify(peer netip.Addr, need, port int, r probes) wire.UnderlayCheck {
	c := wire.UnderlayCheck{PeerIP: peer.String(), NeedMTU: need}
	switch {
	case r.need:
		c.Status = wire.UnderlayOK
	case r.small:
		c.Status, c.PathMTU = wire.UnderlayMTUTooSmall, r.path
		c.Reason = fmt.Sprintf("path MTU %d to %s is below the %d the links need", r.path, peer, need)
	case r.host:
		c.Status = wire.UnderlayPortBlocked
		c.Reason = fmt.Sprintf("%s answers on the underlay, but VXLAN on UDP port %d does not pass", peer, port)
	default:
		c.Status = wire.UnderlayUnreachable
		c.Reason = fmt.Sprintf("%s does not answer on the underlay", peer)
	}
	return c
}

// Search bounds: each round probes up to searchWidth sizes at once and
// narrows the range to a sixteenth, so searchRounds rounds resolve any
// range up to 65536 to the byte.
const (
	searchWidth  = 15
	searchRounds = 4
)

// search returns the largest size that passes, given that lo passed and hi
// did not; probe reports which of sizes passed. A loss makes the answer
// lower, never higher than what passed.
func search(lo, hi int, probe func(sizes []int) []bool) int {
	for range searchRounds {
		sizes := between(lo, hi, searchWidth)
		if len(sizes) == 0 {
			break
		}
		ok := probe(sizes)
		for i, s := range sizes {
			if ok[i] && s > lo {
				lo = s
			}
		}
		for i, s := range sizes {
			if !ok[i] && s > lo && s < hi {
				hi = s
			}
		}
	}
	return lo
}

// between returns up to n sizes evenly spaced strictly between lo and hi.
func between(lo, hi, n int) []int {
	n = min(n, hi-lo-1)
	out := make([]int, 0, max(n, 0))
	for i := range n {
		out = append(out, lo+(i+1)*(hi-lo)/(n+1))
	}
	return out
}
