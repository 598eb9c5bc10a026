package agent

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// prune says which owned objects that the agent does not hold are removed:
// a declaration prunes the labs in its scope, the original's whitelist every
// tunnel port it does not name. The zero prune removes nothing (repair,
// restore). What an edit stops holding is removed whatever prune says.
type prune struct {
	tunnels func(lab, port string) bool // tunnel ports, with their devices
	nodes   func(lab, node string) bool // nodes, with their ports
}

func (p prune) tunnel(lab, port string) bool { return p.tunnels != nil && p.tunnels(lab, port) }
func (p prune) node(lab, node string) bool   { return p.nodes != nil && p.nodes(lab, node) }

// pruneLabs prunes everything of the labs in scope.
func pruneLabs(scope map[string]bool) prune {
	return prune{
		tunnels: func(lab, _ string) bool { return scope[lab] },
		nodes:   func(lab, _ string) bool { return scope[lab] },
	}
}

// planInput is what one convergence makes the host hold, in the order its
// results are reported.
type planInput struct {
	nodes   []wire.DeclaredNode
	tunnels []wire.DeclaredTunnel
}

func (s hostState) input() planInput { return planInput{nodes: s.nodeList(), tunnels: s.tunnelList()} }

// nodeWork is a node the runtime must make, or make match its interfaces.
type nodeWork struct {
	key  nodeKey
	spec runtime.NodeSpec
	// files are written under the state directory before the node is
	// made, and spec's binds pointed at them.
	files []wire.File
	// result indexes the node's result; ports are added to the bridge once
	// the runtime made the node, with the results they stand for.
	result int
	ports  []fabric.Port
	ifaces []int
	// extra says the node has interfaces the declaration does not name.
	extra bool
	// readdress says interfaces declare addresses the agent did not hold:
	// the node is updated even where the runtime finds it whole.
	readdress bool
}

// hostPlan is what planHost decides: the runtime's work, the bridge's
// change set, and the result each object gets if they succeed.
type hostPlan struct {
	// stale are ports of interfaces the runtime makes again: they leave the
	// bridge first, since the userspace datapath never reopens a device
	// that was deleted and made again.
	stale []string
	work  []nodeWork
	plan  fabric.Plan
	// deleteNodes are removed by the runtime once the bridge no longer
	// holds their ports.
	deleteNodes []nodeKey

	nodes   []wire.NodeStatus
	ifaces  []wire.InterfaceStatus
	tunnels []wire.TunnelResult
	// changedIfaces and changedTunnels index results whose status depends
	// on Apply; removedIfaces and removedTunnels, results of removals.
	changedIfaces  map[int]bool
	changedTunnels map[string]bool
	removedIfaces  []int
	removedTunnels []int
	// drifted is the least cause of the drift events recorded, and not
	// yet taken, when the host was observed, once the convergence
	// succeeded whole (it covers them).
	drifted string
}

// planHost decides, without touching anything, what makes the host hold in:
// nodes made or completed, their interfaces on the bridge with their tags,
// tunnels made or fixed (DESIGN §6 rules 3, 4 and 6), and the owned objects
// that held lists and in does not, or that pr covers, removed. obs and
// running are one read of the bridge and of the runtime.
func planHost(in planInput, held hostState, obs fabric.Observed, running []runtime.Node, pr prune, defaultMTU int) hostPlan {
	hp := hostPlan{plan: fabric.Plan{Retag: map[string]int{}, SetMTU: map[string]int{}},
		changedIfaces: map[int]bool{}, changedTunnels: map[string]bool{}}
	runningBy := map[nodeKey]runtime.Node{}
	for _, n := range running {
		runningBy[nodeKey{n.Lab, n.Name}] = n
	}
	declaredNodes := map[nodeKey]bool{}
	declaredPorts := map[string]bool{}
	for _, n := range in.nodes {
		declaredNodes[keyOf(n)] = true
		hp.planNode(n, held.nodes[keyOf(n)], runningBy, obs)
		for _, ifc := range n.Interfaces {
			declaredPorts[ident.HostPortName(n.LabID, n.Name, ifc.Name)] = true
		}
	}
	heldPorts := held.ports()
	for _, name := range slices.Sorted(maps.Keys(obs.Ports)) {
		p := obs.Ports[name]
		if !p.Owned() || p.Owner.Node == "" || declaredPorts[name] {
			continue
		}
		k := nodeKey{p.Owner.Lab, p.Owner.Node}
		_, wasHeld := heldPorts[name]
		// A declared node is declared whole: an interface it does not name goes.
		if !wasHeld && !declaredNodes[k] && !pr.node(k.Lab, k.Node) {
			continue
		}
		hp.plan.DeletePorts = append(hp.plan.DeletePorts, name)
		hp.removedIfaces = append(hp.removedIfaces, len(hp.ifaces))
		hp.ifaces = append(hp.ifaces, wire.InterfaceStatus{LabID: k.Lab, Node: k.Node, Interface: p.Owner.Iface, PortName: name, Status: wire.StatusRemoved})
	}
	gone := map[nodeKey]bool{}
	for k := range held.nodes {
		if !declaredNodes[k] {
			gone[k] = true
		}
	}
	for k := range runningBy {
		if !declaredNodes[k] && pr.node(k.Lab, k.Node) {
			gone[k] = true
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(gone), compareKeys) {
		hp.deleteNodes = append(hp.deleteNodes, k)
		hp.nodes = append(hp.nodes, wire.NodeStatus{LabID: k.Lab, Name: k.Node, Status: wire.StatusRemoved, RuntimeID: runningBy[k].ID})
	}
	hp.planTunnels(in.tunnels, held, obs, pr, defaultMTU)
	return hp
}

func compareKeys(a, b nodeKey) int {
	if c := strings.Compare(a.Lab, b.Lab); c != 0 {
		return c
	}
	return strings.Compare(a.Node, b.Node)
}

// planNode plans one declared node: runtime work when it is not running,
// its interfaces differ from the declared ones, or they declare addresses
// other than the agent held for them (was; the zero node when it held
// none), then each interface's port.
func (hp *hostPlan) planNode(n wire.DeclaredNode, was wire.DeclaredNode, runningBy map[nodeKey]runtime.Node, obs fabric.Observed) {
	k := keyOf(n)
	rn, isRunning := runningBy[k]
	made := map[string]bool{}
	extra := false
	declared := map[string]bool{}
	for _, ifc := range n.Interfaces {
		declared[ifc.Name] = true
	}
	mtus := map[string]int{}
	for _, ifc := range n.Interfaces {
		mtus[ifc.Name] = ifc.MTU
	}
	// Addresses are not read back from the node: a change is what differs
	// from what the agent last held. An interface that declares none
	// leaves its addresses alone, so dropping them needs no work.
	heldAddrs := map[string][]string{}
	for _, ifc := range was.Interfaces {
		heldAddrs[ifc.Name] = ifc.Addresses
	}
	readdress := false
	for _, ifc := range n.Interfaces {
		readdress = readdress || len(ifc.Addresses) > 0 && !slices.Equal(ifc.Addresses, heldAddrs[ifc.Name])
	}
	fix := readdress
	for _, p := range rn.Ports {
		made[p.Interface] = true
		if !declared[p.Interface] {
			extra = true
			continue
		}
		// A host end set down passes nothing, and a link's new MTU goes to
		// both its ends: the runtime sees to both; the port stays.
		fix = fix || p.Down || mtus[p.Interface] != 0 && p.MTU != 0 && p.MTU != mtus[p.Interface]
	}
	res := wire.NodeStatus{LabID: n.LabID, Name: n.Name, Status: wire.StatusConverged, RuntimeID: rn.ID}
	w := nodeWork{key: k, spec: runtime.NodeSpec{Lab: n.LabID, Name: n.Name, Image: n.Image, Container: n.Container}, files: n.Files, result: len(hp.nodes)}
	needWork := !isRunning || extra || fix
	for _, ifc := range n.Interfaces {
		w.spec.Interfaces = append(w.spec.Interfaces, runtime.InterfaceSpec{Name: ifc.Name, MTU: ifc.MTU, MAC: ifc.MAC, Addresses: prefixes(ifc.Addresses)})
		name := ident.HostPortName(n.LabID, n.Name, ifc.Name)
		tag := ifc.VLANTag
		ir := wire.InterfaceStatus{LabID: n.LabID, Node: n.Name, Interface: ifc.Name, PortName: name, ActualVLAN: &tag}
		port, onBridge := obs.Ports[name]
		switch {
		case onBridge && !port.Owned():
			msg := fmt.Sprintf("port %s exists on the bridge and is not netloom's", name)
			ir.Status, ir.Error, ir.ActualVLAN = wire.StatusError, &msg, nil
		case !isRunning || !made[ifc.Name]:
			// The runtime makes the interface; its port follows.
			needWork = true
			if onBridge {
				hp.stale = append(hp.stale, name)
			}
			ir.Status = wire.StatusCreated
			w.ports = append(w.ports, fabric.Port{Name: name, Tag: tag, MTU: ifc.MTU, Owner: fabric.Owner{Lab: n.LabID, Node: n.Name, Iface: ifc.Name}})
			w.ifaces = append(w.ifaces, len(hp.ifaces))
		case !onBridge:
			ir.Status = wire.StatusCreated
			hp.plan.AddPorts = append(hp.plan.AddPorts, fabric.Port{Name: name, Tag: tag, MTU: ifc.MTU, Owner: fabric.Owner{Lab: n.LabID, Node: n.Name, Iface: ifc.Name}})
			hp.changedIfaces[len(hp.ifaces)] = true
		default:
			ir.Status = wire.StatusConverged
			if port.Tag != tag {
				hp.plan.Retag[name] = tag
				ir.Status = wire.StatusUpdated
			}
			if ifc.MTU != 0 && port.MTU != ifc.MTU {
				hp.plan.SetMTU[name] = ifc.MTU
				ir.Status = wire.StatusUpdated
			}
			if ir.Status == wire.StatusUpdated {
				hp.changedIfaces[len(hp.ifaces)] = true
			}
		}
		hp.ifaces = append(hp.ifaces, ir)
	}
	if needWork {
		w.extra, w.readdress = extra, readdress
		res.Status = wire.StatusUpdated
		if !isRunning {
			res.Status = wire.StatusCreated
		}
		hp.work = append(hp.work, w)
	}
	hp.nodes = append(hp.nodes, res)
}

// prefixes parses an interface's addresses, which the declaration's
// validation admitted only as prefixes.
func prefixes(addrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// planTunnels plans the declared tunnels and removes owned tunnel ports that
// are held no longer, or that pr covers.
func (hp *hostPlan) planTunnels(tunnels []wire.DeclaredTunnel, held hostState, obs fabric.Observed, pr prune, defaultMTU int) {
	declared := map[string]bool{}
	for _, t := range tunnels {
		declared[t.PortName] = true
		res := wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName}
		status, changed, reason := planTunnel(&hp.plan, t, obs, defaultMTU)
		res.Status = status
		switch status {
		case wire.StatusError:
			res.Error = &reason
		case wire.StatusProtected:
		default:
			tag := t.ExpectedVLAN
			res.ActualVLAN = &tag
		}
		if changed {
			hp.changedTunnels[t.PortName] = true
		}
		hp.tunnels = append(hp.tunnels, res)
	}
	for _, name := range slices.Sorted(maps.Keys(obs.Ports)) {
		p := obs.Ports[name]
		if declared[name] || !isTunnelPort(name, p) {
			continue
		}
		if _, wasHeld := held.tunnels[name]; !wasHeld && !pr.tunnel(p.Owner.Lab, name) {
			continue
		}
		hp.plan.DeletePorts = append(hp.plan.DeletePorts, name)
		if _, ok := obs.Devices[name]; ok {
			hp.plan.DeleteDevices = append(hp.plan.DeleteDevices, name)
		}
		hp.removedTunnels = append(hp.removedTunnels, len(hp.tunnels))
		hp.tunnels = append(hp.tunnels, wire.TunnelResult{LinkID: p.Owner.Link, LabID: p.Owner.Lab, PortName: name, Status: wire.StatusRemoved})
	}
}

// isTunnelPort reports whether a bridge port is one of netloom's tunnel
// ports: owned, for a link, not a node's.
func isTunnelPort(name string, p fabric.Port) bool {
	return p.Owned() && p.Owner.Link != "" && p.Owner.Node == "" && strings.HasPrefix(name, ident.VXLANPortPrefix)
}

// planTunnel adds to plan what one tunnel needs and says what its status
// will be and whether it depends on the plan applying.
func planTunnel(plan *fabric.Plan, t wire.DeclaredTunnel, obs fabric.Observed, defaultMTU int) (status string, changed bool, reason string) {
	if t.Protected() {
		return wire.StatusProtected, false, ""
	}
	if t.ExpectedVLAN == 0 {
		// A VXLAN port without a tag would be a trunk that bridges every
		// VLAN of the host into the tunnel (W-21).
		return wire.StatusError, false, "expected_vlan is 0: a VXLAN port is never created untagged"
	}
	port, hasPort := obs.Ports[t.PortName]
	if hasPort && !port.Owned() {
		return wire.StatusError, false, fmt.Sprintf("port %s exists on the bridge and is not netloom's", t.PortName)
	}
	if _, isLink := obs.Links[t.PortName]; isLink {
		if _, isDev := obs.Devices[t.PortName]; !isDev {
			return wire.StatusError, false, fmt.Sprintf("device %s exists and is not a VXLAN device", t.PortName)
		}
	}
	mtu := t.MTU
	if mtu == 0 {
		mtu = defaultMTU
	}
	local, lerr := netip.ParseAddr(t.LocalIP)
	remote, rerr := netip.ParseAddr(t.RemoteIP)
	if lerr != nil || rerr != nil {
		return wire.StatusError, false, fmt.Sprintf("addresses %q and %q: not IP addresses", t.LocalIP, t.RemoteIP)
	}
	want := fabric.Device{Name: t.PortName, VNI: uint32(t.VNI), MTU: mtu, Local: local, Remote: remote}
	dev, hasDev := obs.Devices[t.PortName]
	// An OVS tunnel has no MTU of its own (observed 0): it carries what
	// its underlay interface carries, and does not fragment.
	devOK := hasDev && dev.SameTunnel(want) && (dev.MTU == mtu || dev.MTU == 0) && dev.Up
	if devOK && dev.MTU == 0 && dev.MaxMTU > 0 && mtu > dev.MaxMTU {
		return wire.StatusError, false, fmt.Sprintf("mtu %d: the tunnel carries at most %d over its underlay interface and does not fragment", mtu, dev.MaxMTU)
	}
	if !devOK {
		plan.Devices = append(plan.Devices, want)
	}
	if !hasPort {
		plan.AddPorts = append(plan.AddPorts, fabric.Port{
			Name: t.PortName, Tag: t.ExpectedVLAN,
			Owner: fabric.Owner{Lab: t.LabID, Link: t.LinkID},
		})
		return wire.StatusCreated, true, ""
	}
	if port.Tag != t.ExpectedVLAN {
		plan.Retag[t.PortName] = t.ExpectedVLAN
		return wire.StatusUpdated, true, ""
	}
	if !devOK {
		return wire.StatusUpdated, true, ""
	}
	return wire.StatusConverged, false, ""
}
