package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/agent/vlan"
	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/wire"
)

// The original system's per-node and per-link endpoints (DESIGN §6). Each
// is an edit of what the agent holds, converged the same way a declaration
// is; tags come from the agent's allocator, which serves only these calls.

// edit converges the host to next, an edited copy of what the agent holds.
// The caller holds c.mu.
func (c *converger) edit(ctx context.Context, next hostState, pr prune) (hostPlan, error) {
	return c.converge(ctx, next.input(), next, pr, c.generation, true)
}

// observe reads the bridge for an edit's checks. The caller holds c.mu.
func (c *converger) observe(ctx context.Context) (fabric.Observed, error) {
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return obs, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	return obs, nil
}

// heldPortOf finds a node interface the agent holds whose port is on the
// bridge. The caller holds c.mu.
func (c *converger) heldPortOf(obs fabric.Observed, lab, node, iface string) (string, wire.DeclaredInterface, error) {
	name := ident.HostPortName(lab, node, iface)
	hp, ok := c.held.ports()[name]
	if !ok {
		return "", wire.DeclaredInterface{}, fmt.Errorf("%w: interface %s of node %s in lab %s", ErrNotFound, iface, node, lab)
	}
	if _, ok := obs.Ports[name]; !ok {
		return "", wire.DeclaredInterface{}, fmt.Errorf("%w: port %s of %s:%s is not on the bridge", ErrNotFound, name, node, iface)
	}
	return name, hp.iface, nil
}

// ifaceResult and tunnelResult find an object's result in a plan.
func (hp hostPlan) ifaceResult(port string) (wire.InterfaceStatus, bool) {
	i := slices.IndexFunc(hp.ifaces, func(r wire.InterfaceStatus) bool { return r.PortName == port })
	if i < 0 {
		return wire.InterfaceStatus{}, false
	}
	return hp.ifaces[i], true
}

func (hp hostPlan) tunnelResult(port string) (wire.TunnelResult, bool) {
	i := slices.IndexFunc(hp.tunnels, func(r wire.TunnelResult) bool { return r.PortName == port })
	if i < 0 {
		return wire.TunnelResult{}, false
	}
	return hp.tunnels[i], true
}

func (hp hostPlan) nodeResult(k nodeKey) (wire.NodeStatus, bool) {
	i := slices.IndexFunc(hp.nodes, func(r wire.NodeStatus) bool { return r.LabID == k.Lab && r.Name == k.Node })
	if i < 0 {
		return wire.NodeStatus{}, false
	}
	return hp.nodes[i], true
}

// portErrors joins the errors of the named ports' results.
func (hp hostPlan) portErrors(ports ...string) error {
	var errs []error
	for _, p := range ports {
		if r, ok := hp.ifaceResult(p); ok && r.Status == wire.StatusError {
			errs = append(errs, fmt.Errorf("port %s: %s", p, *r.Error))
		}
	}
	return errors.Join(errs...)
}

// createNode makes a node with its interfaces, each on an isolated tag of
// its own; interfaces it has already keep their tags. A node the runtime
// cannot make is not held: nothing of it remains.
func (c *converger) createNode(ctx context.Context, lab string, req wire.CreateNodeRequest) (wire.NodeResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := nodeKey{lab, req.Name}
	old, wasHeld := c.held.nodes[k]
	n := wire.DeclaredNode{LabID: lab, Name: req.Name, Exec: req.Exec}
	for _, ifc := range req.Interfaces {
		tag := 0
		if i := slices.IndexFunc(old.Interfaces, func(o wire.DeclaredInterface) bool { return o.Name == ifc.Name }); i >= 0 {
			tag = old.Interfaces[i].VLANTag
		} else {
			var err error
			if tag, err = c.tags.Allocate(vlan.Isolated); err != nil {
				return wire.NodeResponse{}, err
			}
		}
		n.Interfaces = append(n.Interfaces, wire.DeclaredInterface{Name: ifc.Name, VLANTag: tag, MTU: ifc.MTU})
	}
	next := c.held.clone()
	next.nodes[k] = n
	hp, err := c.edit(ctx, next, prune{})
	if err != nil {
		return wire.NodeResponse{}, err
	}
	res, _ := hp.nodeResult(k)
	var ports []string
	for _, ifc := range n.Interfaces {
		ports = append(ports, ident.HostPortName(lab, req.Name, ifc.Name))
	}
	failed := hp.portErrors(ports...)
	if res.Status == wire.StatusError {
		failed = errors.Join(errors.New(*res.Error), failed)
	}
	if failed != nil {
		if !wasHeld {
			back := c.held.clone()
			delete(back.nodes, k)
			if _, uerr := c.edit(ctx, back, prune{}); uerr != nil {
				failed = errors.Join(failed, fmt.Errorf("roll back: %w", uerr))
			}
		}
		return wire.NodeResponse{}, fmt.Errorf("create node %s: %w", req.Name, failed)
	}
	c.log.Info("node created", "lab", lab, "node", req.Name, "ports", len(n.Interfaces))
	resp := wire.NodeResponse{LabID: lab, Name: req.Name, Runtime: "netns", RuntimeID: res.RuntimeID, Ports: []wire.NodePort{}}
	for _, f := range res.ExecFailures {
		resp.ExecErrors = append(resp.ExecErrors, f.Summary(req.Name))
	}
	for i, ifc := range n.Interfaces {
		resp.Ports = append(resp.Ports, wire.NodePort{Interface: ifc.Name, PortName: ports[i], VLANTag: ifc.VLANTag})
	}
	return resp, nil
}

// deleteNode removes a node, its ports and any port of it the agent does not
// hold.
func (c *converger) deleteNode(ctx context.Context, lab, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.held.clone()
	delete(next.nodes, nodeKey{lab, node})
	pr := prune{nodes: func(l, n string) bool { return l == lab && n == node }}
	hp, err := c.edit(ctx, next, pr)
	if err != nil {
		return err
	}
	if r, ok := hp.nodeResult(nodeKey{lab, node}); ok && r.Status == wire.StatusError {
		return fmt.Errorf("delete node %s: %s", node, *r.Error)
	}
	c.log.Info("node deleted", "lab", lab, "node", node)
	return nil
}

// retagged returns a copy of what the agent holds with node ports on new
// tags. The caller holds c.mu.
func (c *converger) retagged(tags map[string]int) hostState {
	next := c.held.clone()
	held := c.held.ports()
	for name, tag := range tags {
		if p, ok := held[name]; ok {
			next.withTag(p.key, p.iface.Name, tag)
		}
	}
	return next
}

// linkSameHost puts two node interfaces on one linked tag: theirs if they
// share one already, else a fresh one.
func (c *converger) linkSameHost(ctx context.Context, lab string, req wire.SameHostLinkRequest) (wire.SameHostLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	linkID := ident.LinkName(req.SourceNode+":"+req.SourceInterface, req.TargetNode+":"+req.TargetInterface)
	obs, err := c.observe(ctx)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	a, ai, err := c.heldPortOf(obs, lab, req.SourceNode, req.SourceInterface)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	b, bi, err := c.heldPortOf(obs, lab, req.TargetNode, req.TargetInterface)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	tag := ai.VLANTag
	if tag != bi.VLANTag || !vlan.Linked.Contains(tag) {
		if tag, err = c.tags.Allocate(vlan.Linked); err != nil {
			return wire.SameHostLinkResponse{}, err
		}
	}
	hp, err := c.edit(ctx, c.retagged(map[string]int{a: tag, b: tag}), prune{})
	if err == nil {
		err = hp.portErrors(a, b)
	}
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	c.log.Info("same-host link up", "lab", lab, "link", linkID, "tag", tag)
	return wire.SameHostLinkResponse{Success: true, LinkID: linkID, VLANTag: &tag}, nil
}

// unlinkSameHost puts both ends of a same-host link on isolated tags of their
// own. The link id is "<node>:<iface>-<node>:<iface>"; since names may hold
// "-", every split is tried and exactly one must name two held ports.
func (c *converger) unlinkSameHost(ctx context.Context, lab, linkID string) (wire.SameHostLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observe(ctx)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	var found [][2]string
	for i := range linkID {
		if linkID[i] != '-' {
			continue
		}
		a, aok := c.endpointPort(obs, lab, linkID[:i])
		b, bok := c.endpointPort(obs, lab, linkID[i+1:])
		if aok && bok {
			found = append(found, [2]string{a, b})
		}
	}
	switch len(found) {
	case 0:
		return wire.SameHostLinkResponse{}, fmt.Errorf("%w: link %s in lab %s", ErrNotFound, linkID, lab)
	case 1:
	default:
		return wire.SameHostLinkResponse{}, fmt.Errorf("link %s in lab %s: ambiguous, %d ways to split it", linkID, lab, len(found))
	}
	tags := map[string]int{}
	for _, name := range found[0] {
		tag, err := c.tags.Allocate(vlan.Isolated)
		if err != nil {
			return wire.SameHostLinkResponse{}, err
		}
		tags[name] = tag
	}
	hp, err := c.edit(ctx, c.retagged(tags), prune{})
	if err == nil {
		err = hp.portErrors(found[0][0], found[0][1])
	}
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	c.log.Info("same-host link down", "lab", lab, "link", linkID)
	return wire.SameHostLinkResponse{Success: true, LinkID: linkID}, nil
}

// endpointPort resolves "node:iface" to a held node port on the bridge.
func (c *converger) endpointPort(obs fabric.Observed, lab, endpoint string) (string, bool) {
	node, iface, ok := strings.Cut(endpoint, ":")
	if !ok {
		return "", false
	}
	name, _, err := c.heldPortOf(obs, lab, node, iface)
	return name, err == nil
}

// attach makes this host's side of a cross-host link: the node port and the
// link's tunnel on one linked tag. Attaching again keeps the tag.
func (c *converger) attach(ctx context.Context, req wire.AttachLinkRequest) (wire.AttachLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observe(ctx)
	if err != nil {
		return wire.AttachLinkResponse{}, err
	}
	nodePort, ifc, err := c.heldPortOf(obs, req.LabID, req.ContainerName, req.InterfaceName)
	if err != nil {
		return wire.AttachLinkResponse{}, err
	}
	portName := ident.PortName(req.LabID, req.LinkID)
	tag := 0
	if t, ok := c.held.tunnels[portName]; ok && ifc.VLANTag == t.ExpectedVLAN {
		tag = t.ExpectedVLAN
	} else if tag, err = c.tags.Allocate(vlan.Linked); err != nil {
		return wire.AttachLinkResponse{}, err
	}
	next := c.retagged(map[string]int{nodePort: tag})
	next.tunnels[portName] = wire.DeclaredTunnel{
		LinkID: req.LinkID, LabID: req.LabID, VNI: req.VNI, LocalIP: req.LocalIP, RemoteIP: req.RemoteIP,
		ExpectedVLAN: tag, PortName: portName, MTU: req.TenantMTU,
	}
	hp, err := c.edit(ctx, next, prune{})
	if err != nil {
		return wire.AttachLinkResponse{}, err
	}
	if r, _ := hp.tunnelResult(portName); r.Status == wire.StatusError {
		return wire.AttachLinkResponse{Success: false, Error: r.Error}, nil
	}
	if err := hp.portErrors(nodePort); err != nil {
		msg := err.Error()
		return wire.AttachLinkResponse{Success: false, Error: &msg}, nil
	}
	c.log.Info("link attached", "lab", req.LabID, "link", req.LinkID, "port", portName, "tag", tag, "vni", req.VNI)
	vni := req.VNI
	return wire.AttachLinkResponse{Success: true, LocalVLAN: &tag, VNI: &vni, PortName: portName}, nil
}

// detach removes this host's side of a cross-host link: the node port goes
// to an isolated tag of its own, the tunnel's port and device go (also one
// of netloom's the agent did not hold). Detaching what is gone succeeds.
func (c *converger) detach(ctx context.Context, req wire.DetachLinkRequest) (wire.DetachLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observe(ctx)
	if err != nil {
		return wire.DetachLinkResponse{}, err
	}
	resp := wire.DetachLinkResponse{Success: true}
	tags := map[string]int{}
	nodePort, _, perr := c.heldPortOf(obs, req.LabID, req.ContainerName, req.InterfaceName)
	if perr == nil {
		tag, err := c.tags.Allocate(vlan.Isolated)
		if err != nil {
			return wire.DetachLinkResponse{}, err
		}
		tags[nodePort] = tag
		resp.InterfaceIsolated, resp.NewVLAN = true, &tag
	}
	portName := ident.PortName(req.LabID, req.LinkID)
	next := c.retagged(tags)
	delete(next.tunnels, portName)
	pr := prune{tunnels: func(_, port string) bool { return port == portName }}
	hp, err := c.edit(ctx, next, pr)
	if err != nil {
		return wire.DetachLinkResponse{}, err
	}
	if r, ok := hp.tunnelResult(portName); ok {
		if r.Status == wire.StatusError {
			return wire.DetachLinkResponse{}, fmt.Errorf("detach %s: %s", portName, *r.Error)
		}
		resp.TunnelDeleted = r.Status == wire.StatusRemoved
	}
	if perr == nil {
		if err := hp.portErrors(nodePort); err != nil {
			return wire.DetachLinkResponse{}, err
		}
	}
	c.log.Info("link detached", "lab", req.LabID, "link", req.LinkID, "port", portName)
	return resp, nil
}

// cleanup tears a lab down on this host: its tunnels, its node ports and
// its nodes, held or not.
func (c *converger) cleanup(ctx context.Context, lab string) (wire.CleanupResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := wire.CleanupResponse{Errors: []string{}}
	next := c.held.clone()
	next.dropLab(lab)
	hp, err := c.edit(ctx, next, pruneLabs(map[string]bool{lab: true}))
	if err != nil {
		return resp, err
	}
	for _, r := range hp.tunnels {
		if r.LabID == lab && r.Status == wire.StatusRemoved {
			resp.TunnelsDeleted++
		}
	}
	for _, r := range hp.nodes {
		if r.LabID == lab && r.Status == wire.StatusRemoved {
			resp.NodesDeleted++
		}
	}
	resp.Errors = append(resp.Errors, hp.failures()...)
	c.log.Info("lab cleaned up", "lab", lab, "tunnels", resp.TunnelsDeleted, "nodes", resp.NodesDeleted)
	return resp, nil
}

// setVLAN retags one port the agent holds, a tunnel's or a node
// interface's, and keeps the new tag.
func (c *converger) setVLAN(ctx context.Context, port string, req wire.SetVLANRequest) (wire.SetVLANResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observe(ctx)
	if err != nil {
		return wire.SetVLANResponse{}, err
	}
	p, ok := obs.Ports[port]
	if !ok {
		return wire.SetVLANResponse{}, fmt.Errorf("%w: port %s", ErrNotFound, port)
	}
	if !p.Owned() {
		return wire.SetVLANResponse{}, fmt.Errorf("port %s: %w", port, ErrNotOwned)
	}
	next := c.retagged(map[string]int{port: req.VLANTag})
	t, isTunnel := next.tunnels[port]
	if isTunnel {
		t.ExpectedVLAN = req.VLANTag
		next.tunnels[port] = t
	} else if _, isNode := c.held.ports()[port]; !isNode {
		return wire.SetVLANResponse{}, fmt.Errorf("%w: port %s is netloom's but not held by this agent", ErrNotFound, port)
	}
	hp, err := c.edit(ctx, next, prune{})
	if err != nil {
		return wire.SetVLANResponse{}, err
	}
	if r, ok := hp.tunnelResult(port); ok && r.Status == wire.StatusError {
		return wire.SetVLANResponse{}, fmt.Errorf("retag %s: %s", port, *r.Error)
	}
	if err := hp.portErrors(port); err != nil {
		return wire.SetVLANResponse{}, err
	}
	return wire.SetVLANResponse{Success: true, PortName: port, VLANTag: req.VLANTag, InMemoryUpdated: true}, nil
}

// declarePorts converges same-host pairings: both ports must be held node
// ports of the pairing's lab on the bridge, and end on its tag. All retags
// go in one convergence.
func (c *converger) declarePorts(ctx context.Context, req wire.PortDeclareRequest) (wire.PortDeclareResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observe(ctx)
	if err != nil {
		return wire.PortDeclareResponse{}, err
	}
	resp := wire.PortDeclareResponse{Results: []wire.PortResult{}}
	held := c.held.ports()
	tags := map[string]int{}
	for _, pr := range req.Pairings {
		res := wire.PortResult{LinkName: pr.LinkName, LabID: pr.LabID}
		var problems []string
		for _, name := range []string{pr.PortA, pr.PortB} {
			hp, isHeld := held[name]
			_, onBridge := obs.Ports[name]
			switch {
			case !onBridge:
				problems = append(problems, fmt.Sprintf("port %s is not on the bridge", name))
			case !isHeld || hp.key.Lab != pr.LabID:
				problems = append(problems, fmt.Sprintf("port %s is not a node port of lab %s", name, pr.LabID))
			}
		}
		if len(problems) > 0 {
			msg := strings.Join(problems, "; ")
			res.Status, res.Error = wire.StatusError, &msg
		} else {
			tag := pr.VLANTag
			res.Status, res.ActualVLAN = wire.StatusConverged, &tag
			tags[pr.PortA], tags[pr.PortB] = tag, tag
		}
		resp.Results = append(resp.Results, res)
	}
	hp, err := c.edit(ctx, c.retagged(tags), prune{})
	if err != nil {
		return wire.PortDeclareResponse{}, err
	}
	for i, pr := range req.Pairings {
		res := &resp.Results[i]
		if res.Status == wire.StatusError {
			continue
		}
		for _, name := range []string{pr.PortA, pr.PortB} {
			r, _ := hp.ifaceResult(name)
			switch r.Status {
			case wire.StatusError:
				res.Status, res.Error, res.ActualVLAN = wire.StatusError, r.Error, nil
			case wire.StatusUpdated, wire.StatusCreated:
				res.Status = wire.StatusUpdated
			}
			if res.Status == wire.StatusError {
				break
			}
		}
	}
	return resp, nil
}

// reconcilePorts is the old whitelist: every netloom tunnel port not named
// is removed, with the original's guards, and no longer held, so repair
// does not bring it back (W-8). Unmarked ports are never touched.
func (c *converger) reconcilePorts(ctx context.Context, req wire.ReconcilePortsRequest) (wire.ReconcilePortsResponse, error) {
	resp := wire.ReconcilePortsResponse{RemovedPorts: []string{}, ValidCount: len(req.ValidPortNames)}
	switch {
	case req.Force && !req.Confirm:
		resp.Skipped, resp.Reason = true, "force requires confirm=true"
		return resp, nil
	case len(req.ValidPortNames) == 0 && !req.Force:
		resp.Skipped, resp.Reason = true, "empty valid_port_names"
		return resp, nil
	case len(req.ValidPortNames) == 0 && !req.AllowEmpty:
		resp.Skipped, resp.Reason = true, "empty valid_port_names requires allow_empty=true when force=true"
		return resp, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	valid := map[string]bool{}
	for _, n := range req.ValidPortNames {
		valid[n] = true
	}
	next := c.held.clone()
	for name := range next.tunnels {
		if !valid[name] {
			delete(next.tunnels, name)
		}
	}
	hp, err := c.edit(ctx, next, prune{tunnels: func(_, port string) bool { return !valid[port] }})
	if err != nil {
		return resp, err
	}
	for _, i := range hp.removedTunnels {
		if r := hp.tunnels[i]; r.Status == wire.StatusRemoved {
			resp.RemovedPorts = append(resp.RemovedPorts, r.PortName)
		}
	}
	c.m.orphans.Add(float64(len(resp.RemovedPorts)))
	return resp, nil
}

// portState reports a lab's node ports from one runtime read and one bridge
// read; carrier is the host end's operational state.
func (c *converger) portState(ctx context.Context, lab string) (wire.PortStateResponse, error) {
	nodes, err := c.runtime.List(ctx)
	if err != nil {
		return wire.PortStateResponse{}, err
	}
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return wire.PortStateResponse{}, err
	}
	resp := wire.PortStateResponse{Ports: []wire.PortState{}}
	for _, n := range nodes {
		if n.Lab != lab {
			continue
		}
		for _, p := range n.Ports {
			bp, on := obs.Ports[p.HostPort]
			if !on {
				continue // not attached: no port to report
			}
			carrier := "unknown"
			switch p.OperState {
			case "up":
				carrier = "on"
			case "down", "lower-layer-down":
				carrier = "off"
			}
			resp.Ports = append(resp.Ports, wire.PortState{
				NodeName: p.Node, InterfaceName: p.Interface, OVSPortName: p.HostPort, VLANTag: bp.Tag, Carrier: carrier,
			})
		}
	}
	return resp, nil
}

// status reports the tunnels the agent holds.
func (c *converger) status() wire.OverlayStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := wire.OverlayStatus{VTEPs: []any{}, Tunnels: []any{}, Bridges: []any{}, LinkTunnels: []wire.LinkTunnel{}, Generation: c.generation}
	for _, t := range c.held.tunnelList() {
		mtu := t.MTU
		if mtu == 0 {
			mtu = c.mtu
		}
		st.LinkTunnels = append(st.LinkTunnels, wire.LinkTunnel{
			LinkID: t.LinkID, VNI: t.VNI, LocalIP: t.LocalIP, RemoteIP: t.RemoteIP, LocalVLAN: t.ExpectedVLAN,
			InterfaceName: t.PortName, LabID: t.LabID, TenantMTU: mtu,
		})
	}
	return st
}
