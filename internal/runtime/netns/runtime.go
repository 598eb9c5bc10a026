package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
)

// stopGrace is how long a node's processes have to end on SIGTERM before
// they get SIGKILL, when the node is deleted.
const stopGrace = 2 * time.Second

// aliasPrefix starts the alias of every host end this runtime makes.
const aliasPrefix = "netloom/"

var (
	// nameRE is what lab and node names may hold: they appear in namespace
	// names and in the "/"-separated alias.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	// ifaceRE is what a node interface may be called.
	ifaceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
)

// Config says where the runtime works.
type Config struct {
	// HostNetns is the namespace that holds the host ends and the bridge;
	// empty means the agent's own.
	HostNetns string
}

// Runtime runs nodes as network namespaces.
type Runtime struct {
	cfg Config
	log *slog.Logger
	// self names the host in the marks of its nodes' namespaces: the host
	// namespace's name, "" for an unnamed one (a real host's own).
	self string

	mu sync.Mutex
	// mu guards the following.
	marks map[string]seenMark // by namespace name
}

var _ runtime.Runtime = (*Runtime)(nil)

// check reports a host namespace that does not exist.
func (c Config) check() error {
	if c.HostNetns != "" && !Exists(c.HostNetns) {
		return fmt.Errorf("host netns %s does not exist", c.HostNetns)
	}
	return nil
}

// New returns a runtime working in cfg.HostNetns.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	self := cfg.HostNetns
	if self == "" {
		var err error
		if self, err = Identify(); err != nil {
			return nil, err
		}
	}
	return &Runtime{cfg: cfg, log: log, self: self, marks: map[string]seenMark{}}, nil
}

// Validate checks a node spec whole, naming every bad field: the names
// every runtime puts into namespace, container and interface names.
func Validate(spec runtime.NodeSpec) error {
	var errs []error
	if !nameRE.MatchString(spec.Lab) {
		errs = append(errs, fmt.Errorf("lab %q: want 1 to 64 characters of [A-Za-z0-9_.-]", spec.Lab))
	}
	if !nameRE.MatchString(spec.Name) {
		errs = append(errs, fmt.Errorf("node %q: want 1 to 64 characters of [A-Za-z0-9_.-]", spec.Name))
	}
	seen := map[string]bool{}
	for i, ifc := range spec.Interfaces {
		switch {
		case !ifaceRE.MatchString(ifc.Name) || ifc.Name == "lo":
			errs = append(errs, fmt.Errorf("interfaces[%d].name %q: want 1 to 15 characters of [A-Za-z0-9_.-], not lo", i, ifc.Name))
		case seen[ifc.Name]:
			errs = append(errs, fmt.Errorf("interfaces[%d].name %q: duplicate", i, ifc.Name))
		}
		seen[ifc.Name] = true
		if ifc.MTU != 0 && (ifc.MTU < 68 || ifc.MTU > 65535) {
			errs = append(errs, fmt.Errorf("interfaces[%d].mtu %d: want 68 to 65535", i, ifc.MTU))
		}
	}
	return errors.Join(errs...)
}

func alias(lab, node, iface string) string {
	return aliasPrefix + lab + "/" + node + "/" + iface
}

// parseAlias splits an alias this runtime wrote; ok is false for any other.
func parseAlias(a string) (lab, node, iface string, ok bool) {
	rest, ok := strings.CutPrefix(a, aliasPrefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// CreateNode makes the node's namespace, marked as the node's, and its
// interfaces, keeping those that exist already and removing this node's
// interfaces that spec does not name (see Wire). A namespace of the node's
// name that is not marked as this node's on this host is an error, and is
// left alone. On error it removes what this call made.
func (r *Runtime) CreateNode(ctx context.Context, spec runtime.NodeSpec) (runtime.Node, error) {
	if err := Validate(spec); err != nil {
		return runtime.Node{}, err
	}
	nsName := ident.NamespaceName(spec.Lab, spec.Name)
	host, err := NewHandle(r.cfg.HostNetns)
	if err != nil {
		return runtime.Node{}, err
	}
	defer host.Close()
	created := !Exists(nsName)
	if created {
		if err := CreateMarked(nsName, nodeMark(spec.Lab, spec.Name, r.self)); err != nil {
			return runtime.Node{}, err
		}
	} else {
		owner, mark, err := r.ownerOf(nsName, spec.Lab, spec.Name)
		if err != nil {
			return runtime.Node{}, fmt.Errorf("node %s: %w", spec.Name, err)
		}
		if owner != ownedHere {
			return runtime.Node{}, fmt.Errorf("node %s: %w", spec.Name, errNotMine(nsName, mark))
		}
	}
	undoNs := func(err error) (runtime.Node, error) {
		if created {
			if derr := Delete(nsName); derr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
			}
		}
		return runtime.Node{}, err
	}
	nodeNs, err := Open(nsName)
	if err != nil {
		return undoNs(err)
	}
	defer nodeNs.Close()
	ports, err := Wire(ctx, host, nodeNs, spec, created)
	if err != nil {
		return undoNs(err)
	}
	r.log.Info("node ready", "lab", spec.Lab, "node", spec.Name, "netns", nsName, "ports", len(ports), "new", created)
	return runtime.Node{Lab: spec.Lab, Name: spec.Name, ID: nsName, Ports: ports, New: created}, nil
}

// Wire makes a node's interfaces match spec inside the node's network
// namespace nodeNs, whichever runtime made it: each interface a veth whose
// host end, named by ident.HostPortName and marked with netloom's alias,
// stays in host's namespace, with the node's MAC (ident.NodeMAC), MTU and
// addresses; interfaces the spec does not name are removed. With fresh (the
// namespace was just made), host ends left from a lost namespace are
// removed first. With spec.FullChecksums, every node end sends complete
// checksums (transmit checksum offload off). It reads only the node's namespace and looks host ends up
// by name: a dump of the host's links would race with the other nodes
// being made. On error it removes what it made.
func Wire(ctx context.Context, host *netlink.Handle, nodeNs vnetns.NsHandle, spec runtime.NodeSpec, fresh bool) ([]runtime.Port, error) {
	return wire(ctx, host, nodeNs, spec, fresh, nodeEnds)
}

// endsFunc finds which of spec's interfaces exist in the node's namespace
// (reached by h), and removes the node's interfaces spec does not name.
type endsFunc func(h *netlink.Handle, spec runtime.NodeSpec) (present map[string]bool, err error)

// wire is Wire, with the node's ends found by ends: a namespace of the
// node's own (nodeEnds) or the host's (hostEnds).
func wire(ctx context.Context, host *netlink.Handle, nodeNs vnetns.NsHandle, spec runtime.NodeSpec, fresh bool, ends endsFunc) ([]runtime.Port, error) {
	node, err := netlink.NewHandleAt(nodeNs)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in node %s: %w", spec.Name, err)
	}
	defer node.Close()
	var undo []func() error
	rollback := func(err error) ([]runtime.Port, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", uerr))
			}
		}
		return nil, err
	}
	present, err := ends(node, spec)
	if err != nil {
		return nil, err
	}

	var ports []runtime.Port
	for _, ifc := range spec.Interfaces {
		if err := ctx.Err(); err != nil {
			return rollback(err)
		}
		hostPort := ident.HostPortName(spec.Lab, spec.Name, ifc.Name)
		want := alias(spec.Lab, spec.Name, ifc.Name)
		if l, err := host.LinkByName(hostPort); err == nil {
			switch {
			case l.Attrs().Alias != want:
				return rollback(fmt.Errorf("interface %s of node %s: host port %s exists and is not this interface's (alias %q)", ifc.Name, spec.Name, hostPort, l.Attrs().Alias))
			case present[ifc.Name] && !fresh:
				// Made by an earlier call. An ovs-vswitchd that held the
				// device under a port of its own sets it down when it lets go.
				if l.Attrs().Flags&net.FlagUp == 0 {
					if err := host.LinkSetUp(l); err != nil {
						return rollback(fmt.Errorf("set host port %s up: %w", hostPort, err))
					}
				}
				if ifc.MTU > 0 && l.Attrs().MTU != ifc.MTU { // the link's MTU changed: both ends follow
					if err := setMTU(host, node, l, ifc); err != nil {
						return rollback(fmt.Errorf("interface %s of node %s: %w", ifc.Name, spec.Name, err))
					}
				}
				if len(ifc.Addresses) > 0 {
					end, err := node.LinkByName(ifc.Name)
					if err == nil {
						err = setAddrs(node, end, ifc.Addresses)
					}
					if err != nil {
						return rollback(fmt.Errorf("interface %s of node %s: %w", ifc.Name, spec.Name, err))
					}
				}
				ports = append(ports, runtime.Port{Lab: spec.Lab, Node: spec.Name, Interface: ifc.Name, HostPort: hostPort,
					Ifindex: l.Attrs().Index, OperState: l.Attrs().OperState.String()})
				continue
			}
			// Its peer went with a lost namespace.
			if err := host.LinkDel(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				return rollback(fmt.Errorf("delete stale host port %s of node %s: %w", hostPort, spec.Name, err))
			}
		}
		mac := ident.NodeMAC(spec.Lab, spec.Name, ifc.Name)
		if ifc.MAC != "" {
			if mac, err = net.ParseMAC(ifc.MAC); err != nil {
				return rollback(fmt.Errorf("interface %s of node %s: mac: %w", ifc.Name, spec.Name, err))
			}
		}
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: hostPort, MTU: ifc.MTU},
			PeerName:         ifc.Name,
			PeerNamespace:    netlink.NsFd(nodeNs),
			PeerHardwareAddr: mac,
		}
		if err := host.LinkAdd(veth); err != nil {
			return rollback(fmt.Errorf("add interface %s of node %s: %w", ifc.Name, spec.Name, err))
		}
		undo = append(undo, func() error { return host.LinkDel(veth) })
		if err := host.LinkSetAlias(veth, want); err != nil {
			return rollback(fmt.Errorf("mark host port %s: %w", hostPort, err))
		}
		// A bridge port needs no IPv6 link-local address, and each one
		// costs ovs-vswitchd a rescan on every link change (see the
		// fabric's tunnel devices).
		if err := host.LinkSetIP6AddrGenMode(veth, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
			return rollback(fmt.Errorf("turn off ipv6 addresses of host port %s: %w", hostPort, err))
		}
		if err := host.LinkSetUp(veth); err != nil {
			return rollback(fmt.Errorf("set host port %s up: %w", hostPort, err))
		}
		peer, err := node.LinkByName(ifc.Name)
		if err != nil {
			return rollback(fmt.Errorf("find %s in node %s: %w", ifc.Name, spec.Name, err))
		}
		if ifc.MTU > 0 {
			if err := node.LinkSetMTU(peer, ifc.MTU); err != nil {
				return rollback(fmt.Errorf("set mtu of %s in node %s: %w", ifc.Name, spec.Name, err))
			}
		}
		if err := setAddrs(node, peer, ifc.Addresses); err != nil {
			return rollback(fmt.Errorf("interface %s of node %s: %w", ifc.Name, spec.Name, err))
		}
		if err := node.LinkSetUp(peer); err != nil {
			return rollback(fmt.Errorf("set %s up in node %s: %w", ifc.Name, spec.Name, err))
		}
		ports = append(ports, runtime.Port{Lab: spec.Lab, Node: spec.Name, Interface: ifc.Name, HostPort: hostPort,
			Ifindex: veth.Attrs().Index, OperState: "up"})
	}
	if spec.FullChecksums {
		// New and existing ends alike: an agent restarted with the
		// option finds ends made without it.
		names := make([]string, len(spec.Interfaces))
		for i, ifc := range spec.Interfaces {
			names[i] = ifc.Name
		}
		if err := FullChecksums(nodeNs, "node "+spec.Name, names); err != nil {
			return rollback(err)
		}
	}
	return ports, nil
}

// nodeEnds finds the veths in a node's own namespace: each is an interface
// of the node, and one spec does not name is removed (its pair with it).
func nodeEnds(node *netlink.Handle, spec runtime.NodeSpec) (map[string]bool, error) {
	inside, err := LinkList(node)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", spec.Name, err)
	}
	wanted := map[string]bool{}
	for _, ifc := range spec.Interfaces {
		wanted[ifc.Name] = true
	}
	present := map[string]bool{}
	for _, l := range inside {
		name := l.Attrs().Name
		if _, isVeth := l.(*netlink.Veth); !isVeth {
			continue
		}
		if wanted[name] {
			present[name] = true
			continue
		}
		// Not declared: the pair goes with this end.
		if err := node.LinkDel(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("delete interface %s of node %s: %w", name, spec.Name, err)
		}
	}
	return present, nil
}

// setAddrs makes a node end hold exactly want, in one read of its
// addresses: missing ones are added, any other removed, but for IPv6
// link-local ones (the kernel's). No want leaves the addresses alone.
func setAddrs(h *netlink.Handle, end netlink.Link, want []netip.Prefix) error {
	if len(want) == 0 {
		return nil
	}
	name := end.Attrs().Name
	have, err := Dump("addresses", func() ([]netlink.Addr, error) { return h.AddrList(end, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	missing := map[netip.Prefix]bool{}
	for _, p := range want {
		missing[p] = true
	}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP)
		bits, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), bits)
		if missing[p] {
			delete(missing, p)
			continue
		}
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if err := h.AddrDel(end, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove address %s of %s: %w", p, name, err)
		}
	}
	for _, p := range want {
		if !missing[p] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			// A lab's address answers at once, not after duplicate
			// address detection has run its second.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(end, a); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p, name, err)
		}
	}
	return nil
}

// setMTU sets an existing interface's MTU at both ends.
func setMTU(host, node *netlink.Handle, hostEnd netlink.Link, ifc runtime.InterfaceSpec) error {
	if err := host.LinkSetMTU(hostEnd, ifc.MTU); err != nil {
		return fmt.Errorf("set mtu of %s: %w", hostEnd.Attrs().Name, err)
	}
	peer, err := node.LinkByName(ifc.Name)
	if err != nil {
		return fmt.Errorf("find %s: %w", ifc.Name, err)
	}
	if err := node.LinkSetMTU(peer, ifc.MTU); err != nil {
		return fmt.Errorf("set mtu of %s: %w", ifc.Name, err)
	}
	return nil
}

// DeleteNode ends the node's processes (its exec'd daemons and anything
// started inside it), then deletes its namespace: the kernel then removes
// the namespace with its interfaces, and their host ends, in one batch. A
// missing node is not an error, nor is the node's namespace made by
// another host that shares /run/netns (the node is not on this one); a
// namespace of the node's name that is not marked as the node's is an
// error, and is left alone.
func (r *Runtime) DeleteNode(ctx context.Context, lab, name string) error {
	if !nameRE.MatchString(lab) || !nameRE.MatchString(name) {
		return fmt.Errorf("delete node %q of lab %q: invalid name", name, lab)
	}
	nsName := ident.NamespaceName(lab, name)
	if !Exists(nsName) {
		return nil
	}
	owner, mark, err := r.ownerOf(nsName, lab, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("delete node %s: %w", name, err)
	case owner == ownedElsewhere:
		return nil
	case owner == notOwned:
		return fmt.Errorf("delete node %s: %w", name, errNotMine(nsName, mark))
	}
	n, err := EndProcesses(nsName, stopGrace)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	if err := Delete(nsName); err != nil {
		return err
	}
	// The kernel gives a later namespace the inode number of a freed
	// one: a namespace made next under this name, by anyone, must have
	// its mark read, not taken from this one's.
	r.forgetMark(nsName)
	r.log.Info("node deleted", "lab", lab, "node", name, "processes_ended", n)
	return ctx.Err()
}

// Exec runs argv inside the node's namespace, as containerlab's exec does
// inside a container: `ip netns exec` enters the namespace (and its
// /etc/netns files) and execs argv itself, so no shell comes between.
func (r *Runtime) Exec(ctx context.Context, lab, node string, argv []string, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return -1, fmt.Errorf("exec in node %s: no command", node)
	}
	ns := ident.NamespaceName(lab, node)
	if !Exists(ns) {
		return -1, fmt.Errorf("exec in node %s: %w: no namespace %s", node, runtime.ErrNoNode, ns)
	}
	if owner, mark, err := r.ownerOf(ns, lab, node); err != nil || owner != ownedHere {
		return -1, fmt.Errorf("exec in node %s: %w: %w", node, runtime.ErrNoNode, errors.Join(err, errNotMine(ns, mark)))
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Once ctx ends, the command's whole process group ends (a shell's
	// children too), and a child that keeps the output open holds Wait no
	// longer.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec %q in node %s: %w", argv[0], node, err)
	}
	return 0, nil
}

// List reports every node whose namespace exists, marked as the node's on
// this host, with its interfaces: a node without interfaces too. It takes
// one read of the namespace folder (reading the mark only of namespaces it
// has not seen, see markOf) and one netlink dump of the host's links.
func (r *Runtime) List(ctx context.Context) ([]runtime.Node, error) {
	host, err := NewHandle(r.cfg.HostNetns)
	if err != nil {
		return nil, err
	}
	defer host.Close()
	ports, err := HostPorts(host)
	if err != nil {
		return nil, err
	}
	names, err := List()
	if err != nil {
		return nil, err
	}
	type key struct{ lab, node string }
	byNode := map[key]int{}
	var nodes []runtime.Node
	seen := map[string]bool{}
	for _, ns := range names {
		if !strings.HasPrefix(ns, ident.NamespacePrefix) {
			continue
		}
		seen[ns] = true
		mark, err := r.markOf(ns)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		lab, node, self, ok := parseMark(mark)
		if !ok || self != r.self || ident.NamespaceName(lab, node) != ns {
			continue // not a node of this host's
		}
		byNode[key{lab, node}] = len(nodes)
		nodes = append(nodes, runtime.Node{Lab: lab, Name: node, ID: ns})
	}
	r.forgetMarks(seen)
	for _, p := range ports {
		// A port whose node has no namespace here is not reported: the
		// node must be made again.
		if i, ok := byNode[key{p.Lab, p.Node}]; ok {
			nodes[i].Ports = append(nodes[i].Ports, p)
		}
	}
	return nodes, ctx.Err()
}

// HostPorts lists the host ends of every node of every runtime, from their
// aliases, in one dump of the host's links.
func HostPorts(host *netlink.Handle) ([]runtime.Port, error) {
	ports, _, err := HostPortsWithPeers(host)
	return ports, err
}

// HostPortsWithPeers is HostPorts, with the namespace each host end's peer
// is in, by the host end's ifindex: the id the host's namespace gives it
// (-1 for none), to compare with what Handle.GetNetNsIdByFd says of a node's
// namespace.
func HostPortsWithPeers(host *netlink.Handle) ([]runtime.Port, map[int]int, error) {
	links, err := LinkList(host)
	if err != nil {
		return nil, nil, fmt.Errorf("host: %w", err)
	}
	var ports []runtime.Port
	peers := map[int]int{}
	for _, l := range links {
		a := l.Attrs()
		if _, _, _, ok := parseAlias(a.Alias); !ok {
			continue
		}
		ports = append(ports, portOf(l))
		peers[a.Index] = a.NetNsID
	}
	return ports, peers, nil
}
