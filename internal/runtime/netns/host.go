package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/netloom/netloom/internal/runtime"
)

// Host runs the pseudo-node runtime.HostNode of every lab: its interfaces
// are veths with both ends in the host's namespace (Config.HostNetns), the
// one named as declared carrying the declared addresses, the other the
// host port the agent puts on the bridge, marked with the same alias as
// any node's. That namespace holds much that is not netloom's: Host
// touches only the veths its aliases mark, and a declared name that is
// taken by anything else is an error.
type Host struct {
	cfg Config
	log *slog.Logger
}

var _ runtime.Runtime = (*Host)(nil)

// NewHost returns the host pseudo-node runtime working in cfg.HostNetns.
func NewHost(cfg Config, log *slog.Logger) (*Host, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Host{cfg: cfg, log: log}, nil
}

// errHostExec is what running a command in the pseudo-node says: there is
// no node to run it in.
var errHostExec = errors.New("node host is the host itself: run the command on the host")

// id is the runtime id of every host pseudo-node: the host namespace's
// name, "host" for the agent's own.
func (h *Host) id() string {
	if h.cfg.HostNetns == "" {
		return runtime.HostNode
	}
	return h.cfg.HostNetns
}

// openNs opens the host namespace; the agent's own is its main thread's,
// which never enters another.
func (h *Host) openNs() (vnetns.NsHandle, error) {
	if h.cfg.HostNetns != "" {
		return Open(h.cfg.HostNetns)
	}
	ns, err := vnetns.GetFromPid(os.Getpid())
	if err != nil {
		return 0, fmt.Errorf("open own netns: %w", err)
	}
	return ns, nil
}

// CreateNode makes the lab's host interfaces match spec: missing ones are
// made, existing ones set to the spec's MTU and addresses, and the lab's
// host interfaces that spec does not name removed. On error it removes
// what this call made.
func (h *Host) CreateNode(ctx context.Context, spec runtime.NodeSpec) (runtime.Node, error) {
	switch {
	case spec.Name != runtime.HostNode:
		return runtime.Node{}, fmt.Errorf("node %s: this runtime runs only node %s", spec.Name, runtime.HostNode)
	case spec.Image != "" || spec.Container != nil:
		return runtime.Node{}, fmt.Errorf("node %s is the host itself: it runs no image", spec.Name)
	}
	if err := Validate(spec); err != nil {
		return runtime.Node{}, err
	}
	ns, err := h.openNs()
	if err != nil {
		return runtime.Node{}, err
	}
	defer ns.Close()
	handle, err := netlink.NewHandleAt(ns)
	if err != nil {
		return runtime.Node{}, fmt.Errorf("netlink handle in the host netns: %w", err)
	}
	defer handle.Close()
	// New means the lab had no host interface before this call.
	existed := false
	ends := func(nh *netlink.Handle, s runtime.NodeSpec) (map[string]bool, error) {
		present, had, err := hostEnds(nh, s)
		existed = had
		return present, err
	}
	ports, err := wire(ctx, handle, ns, spec, false, ends)
	if err != nil {
		return runtime.Node{}, err
	}
	h.log.Info("host interfaces ready", "lab", spec.Lab, "node", spec.Name, "ports", len(ports), "new", !existed)
	return runtime.Node{Lab: spec.Lab, Name: spec.Name, ID: h.id(), Ports: ports, New: !existed}, nil
}

// hostEnds finds the pseudo-node's interfaces among everything in the
// host's namespace, in one dump: an interface is present when the link of
// its name is the peer of its host port. It fails, changing nothing, when a
// declared name is taken by a link that is not; otherwise it removes the
// pseudo-node's interfaces spec does not name. had says the pseudo-node had
// any interface.
func hostEnds(h *netlink.Handle, spec runtime.NodeSpec) (present map[string]bool, had bool, err error) {
	links, err := LinkList(h)
	if err != nil {
		return nil, false, fmt.Errorf("host: %w", err)
	}
	byName := map[string]netlink.Link{}
	ours := map[string]netlink.Link{} // host ports, by interface
	for _, l := range links {
		byName[l.Attrs().Name] = l
		if lab, node, iface, ok := sameNsPort(l); ok && lab == spec.Lab && node == spec.Name {
			ours[iface] = l
		}
	}
	present = map[string]bool{}
	wanted := map[string]bool{}
	for _, ifc := range spec.Interfaces {
		wanted[ifc.Name] = true
		end, taken := byName[ifc.Name]
		if !taken {
			continue
		}
		// A veth reports its peer's ifindex as its link.
		if p, ok := ours[ifc.Name]; !ok || end.Type() != "veth" || end.Attrs().ParentIndex != p.Attrs().Index {
			return nil, false, fmt.Errorf("interface %s of node %s: %s exists in the host's namespace and is not netloom's", ifc.Name, spec.Name, ifc.Name)
		}
		present[ifc.Name] = true
	}
	for iface, l := range ours {
		if wanted[iface] {
			continue
		}
		if err := h.LinkDel(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("delete interface %s of node %s: %w", iface, spec.Name, err)
		}
	}
	return present, len(ours) > 0, nil
}

// sameNsPort reports the lab, node and interface of a host port of the
// pseudo-node: marked with netloom's alias, for runtime.HostNode, and with
// its peer in the same namespace (a veth whose peer is in another reports
// that namespace's id, 0 or more).
func sameNsPort(l netlink.Link) (lab, node, iface string, ok bool) {
	a := l.Attrs()
	lab, node, iface, ok = parseAlias(a.Alias)
	if !ok || node != runtime.HostNode || a.NetNsID >= 0 {
		return "", "", "", false
	}
	return lab, node, iface, true
}

// DeleteNode removes the lab's host interfaces, the pairs its host ports
// mark, and nothing else. None is not an error.
func (h *Host) DeleteNode(ctx context.Context, lab, name string) error {
	if name != runtime.HostNode {
		return nil // not a node this runtime runs
	}
	var errs []error
	n := 0
	err := h.withPorts(func(handle *netlink.Handle, ports []netlink.Link) error {
		for _, l := range ports {
			pl, _, iface, _ := sameNsPort(l)
			if pl != lab {
				continue
			}
			if err := handle.LinkDel(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete interface %s of node %s: %w", iface, name, err))
				continue
			}
			n++
		}
		return nil
	})
	if n > 0 {
		h.log.Info("host interfaces deleted", "lab", lab, "node", name, "ports", n)
	}
	return errors.Join(append(errs, err, ctx.Err())...)
}

// withPorts runs fn with a handle in the host's namespace and the host
// ports of every lab's pseudo-node, from one dump of its links.
func (h *Host) withPorts(fn func(handle *netlink.Handle, ports []netlink.Link) error) error {
	return WithHandle(h.cfg.HostNetns, func(handle *netlink.Handle) error {
		links, err := LinkList(handle)
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		var ports []netlink.Link
		for _, l := range links {
			if _, _, _, ok := sameNsPort(l); ok {
				ports = append(ports, l)
			}
		}
		return fn(handle, ports)
	})
}

// Exec refuses: the pseudo-node is the host, where a command runs without
// netloom.
func (h *Host) Exec(_ context.Context, _, node string, _ []string, _, _ io.Writer) (int, error) {
	if node != runtime.HostNode {
		return -1, fmt.Errorf("exec in node %s: %w", node, runtime.ErrNoNode)
	}
	return -1, errHostExec
}

// List reports the host pseudo-node of every lab that has host
// interfaces, from one dump of the host's links, with its ports' state as
// HostPortsWithPeers reports it.
func (h *Host) List(ctx context.Context) ([]runtime.Node, error) {
	var nodes []runtime.Node
	err := h.withPorts(func(_ *netlink.Handle, ports []netlink.Link) error {
		byLab := map[string]int{}
		for _, l := range ports {
			p := portOf(l)
			i, seen := byLab[p.Lab]
			if !seen {
				i = len(nodes)
				byLab[p.Lab] = i
				nodes = append(nodes, runtime.Node{Lab: p.Lab, Name: p.Node, ID: h.id()})
			}
			nodes[i].Ports = append(nodes[i].Ports, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return nodes, ctx.Err()
}

// portOf describes a host port from its link, marked with netloom's alias.
func portOf(l netlink.Link) runtime.Port {
	a := l.Attrs()
	lab, node, iface, _ := parseAlias(a.Alias)
	return runtime.Port{
		Lab: lab, Node: node, Interface: iface, HostPort: a.Name, Ifindex: a.Index, OperState: a.OperState.String(),
		Down: a.Flags&net.FlagUp == 0, MTU: a.MTU,
	}
}
