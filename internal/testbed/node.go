package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// maxNodeName bounds node names; they only name namespaces.
const maxNodeName = 40

// maxIfaceName is the kernel's interface name limit.
const maxIfaceName = 15

// Node is a lab device: a namespace whose interfaces are veths ending in a
// host.
type Node struct {
	// Name is the node's name in the bed.
	Name string
	// Netns is the node's namespace.
	Netns string
	// Host is the host its interfaces end in.
	Host *Host
}

// AddNode creates an empty node on host h.
func (h *Host) AddNode(ctx context.Context, name string) (*Node, error) {
	if err := checkName("node", name, maxNodeName); err != nil {
		return nil, err
	}
	b := h.bed
	n := &Node{Name: name, Netns: b.id + "-" + name, Host: h}
	b.mu.Lock()
	_, dup := b.nodes[name]
	_, clash := b.hosts[name]
	if !dup && !clash {
		b.nodes[name] = n
	}
	b.mu.Unlock()
	if dup || clash {
		return nil, fmt.Errorf("node %s: the name is taken already", name)
	}
	if err := b.addNetns(n.Netns); err != nil {
		return nil, err
	}
	return n, ctx.Err()
}

// AddInterface gives the node an interface ifname with address addr (invalid
// for none), as a veth whose other end, hostEnd, sits in the node's host, up
// and not attached to anything. mtu 0 keeps the kernel default.
func (n *Node) AddInterface(ctx context.Context, ifname, hostEnd string, addr netip.Prefix, mtu int) error {
	for _, name := range []string{ifname, hostEnd} {
		if err := checkName("interface", name, maxIfaceName); err != nil {
			return err
		}
	}
	if addr.IsValid() {
		if err := checkPrefix("interface "+ifname+" address", addr); err != nil {
			return err
		}
	}
	nodeNs, err := nlns.Open(n.Netns)
	if err != nil {
		return err
	}
	defer nodeNs.Close()
	err = nlns.WithHandle(n.Host.Netns, func(h *netlink.Handle) error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hostEnd, MTU: mtu},
			PeerName:      ifname,
			PeerNamespace: netlink.NsFd(nodeNs),
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s of node %s: %w", hostEnd, n.Name, err)
		}
		return h.LinkSetUp(veth)
	})
	if err != nil {
		return err
	}
	err = nlns.WithHandle(n.Netns, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("find %s in node %s: %w", ifname, n.Name, err)
		}
		if mtu > 0 {
			if err := h.LinkSetMTU(link, mtu); err != nil {
				return fmt.Errorf("set mtu of %s in node %s: %w", ifname, n.Name, err)
			}
		}
		if addr.IsValid() {
			if err := h.AddrAdd(link, addrOf(addr)); err != nil {
				return fmt.Errorf("address %s in node %s: %w", ifname, n.Name, err)
			}
		}
		return h.LinkSetUp(link)
	})
	if err != nil {
		return err
	}
	return ctx.Err()
}

var receivedRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// Ping sends count echo requests from the node to dst; see ping.
func (n *Node) Ping(ctx context.Context, dst netip.Addr, count int) (int, error) {
	return PingFrom(ctx, n.Netns, dst, count)
}

// PingFrom sends count echo requests from namespace ns to dst, 0.2 s apart, each
// waiting at most 1 s for its reply, and returns how many replies came back.
// No reply is not an error: isolation tests expect it.
func PingFrom(ctx context.Context, ns string, dst netip.Addr, count int) (int, error) {
	return PingWithin(ctx, ns, dst, count, time.Second)
}

// PingWithin is PingFrom with each reply awaited at most wait.
func PingWithin(ctx context.Context, ns string, dst netip.Addr, count int, wait time.Duration) (int, error) {
	w := strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)
	out, err := ExecIn(ctx, ns, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", w, dst.String())
	m := receivedRE.FindStringSubmatch(out)
	if m == nil {
		if err == nil {
			err = fmt.Errorf("ping from %s: no summary in %q", ns, out)
		}
		return 0, err
	}
	return strconv.Atoi(m[2])
}
