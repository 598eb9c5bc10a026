package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/agent/vlan"
	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// observeForTags reads the bridge and tells the allocator every tag in use,
// for an operation that allocates; tags it allocates afterwards stay taken
// until the next sync. The caller holds c.mu.
func (c *converger) observeForTags(ctx context.Context) (fabric.Observed, error) {
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return obs, err
	}
	c.syncTags(obs)
	return obs, nil
}

// nodePortOf finds a node interface's port: it must be the agent's and on
// the bridge. The caller holds c.mu.
func (c *converger) nodePortOf(obs fabric.Observed, lab, node, iface string) (string, error) {
	name := ident.HostPortName(lab, node, iface)
	if _, ok := c.ports[name]; !ok {
		return "", fmt.Errorf("%w: interface %s of node %s in lab %s", ErrNotFound, iface, node, lab)
	}
	if _, ok := obs.Ports[name]; !ok {
		return "", fmt.Errorf("%w: port %s of %s:%s is not on the bridge", ErrNotFound, name, node, iface)
	}
	return name, nil
}

// createNode makes a node with its interfaces and puts each on its own
// isolated tag. If the bridge refuses, the node is removed again.
func (c *converger) createNode(ctx context.Context, lab string, req wire.CreateNodeRequest) (wire.NodeResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observeForTags(ctx)
	if err != nil {
		return wire.NodeResponse{}, err
	}
	spec := runtime.NodeSpec{Lab: lab, Name: req.Name}
	for _, ifc := range req.Interfaces {
		spec.Interfaces = append(spec.Interfaces, runtime.InterfaceSpec{Name: ifc.Name, MTU: ifc.MTU})
	}
	node, err := c.runtime.CreateNode(ctx, spec)
	if err != nil {
		return wire.NodeResponse{}, err
	}
	var plan fabric.Plan
	added := map[string]nodePort{}
	mtus := map[string]int{}
	for _, ifc := range req.Interfaces {
		mtus[ifc.Name] = ifc.MTU
	}
	for _, p := range node.Ports {
		want, known := c.ports[p.HostPort]
		if !known {
			tag, err := c.tags.Allocate(vlan.Isolated)
			if err != nil {
				return wire.NodeResponse{}, errors.Join(err, c.runtime.DeleteNode(ctx, lab, req.Name))
			}
			want = nodePort{Lab: lab, Node: req.Name, Iface: p.Interface, Tag: tag, MTU: mtus[p.Interface]}
			c.ports[p.HostPort] = want
			added[p.HostPort] = want
		}
		if _, on := obs.Ports[p.HostPort]; !on {
			plan.AddPorts = append(plan.AddPorts, fabric.Port{Name: p.HostPort, Tag: want.Tag, MTU: want.MTU, Owner: want.owner()})
		}
	}
	if err := c.driver.Apply(ctx, plan); err != nil {
		for name := range added {
			delete(c.ports, name)
		}
		return wire.NodeResponse{}, errors.Join(err, c.runtime.DeleteNode(ctx, lab, req.Name))
	}
	c.log.Info("node created", "lab", lab, "node", req.Name, "ports", len(node.Ports))
	resp := wire.NodeResponse{LabID: lab, Name: req.Name, Runtime: "netns", RuntimeID: node.ID, Ports: []wire.NodePort{}}
	// As containerlab: exec runs once, when the node is made and its
	// interfaces exist; a failure is reported, not fatal.
	for _, cmd := range req.Exec {
		if !node.New {
			break
		}
		if _, err := c.runtime.Exec(ctx, lab, req.Name, cmd); err != nil {
			resp.ExecErrors = append(resp.ExecErrors, err.Error())
			c.log.Warn("exec failed", "lab", lab, "node", req.Name, "err", err)
		}
	}
	for _, p := range node.Ports {
		resp.Ports = append(resp.Ports, wire.NodePort{Interface: p.Interface, PortName: p.HostPort, VLANTag: c.ports[p.HostPort].Tag})
	}
	return resp, nil
}

// deleteNode removes a node's ports from the bridge, then the node.
func (c *converger) deleteNode(ctx context.Context, lab, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return err
	}
	var plan fabric.Plan
	for name, p := range obs.Ports {
		if p.Owned() && p.Owner.Lab == lab && p.Owner.Node == node {
			plan.DeletePorts = append(plan.DeletePorts, name)
		}
	}
	if err := c.driver.Apply(ctx, plan); err != nil {
		return err
	}
	for name, p := range c.ports {
		if p.Lab == lab && p.Node == node {
			delete(c.ports, name)
		}
	}
	if err := c.runtime.DeleteNode(ctx, lab, node); err != nil {
		return err
	}
	c.log.Info("node deleted", "lab", lab, "node", node)
	return nil
}

// linkSameHost puts two node interfaces on one fresh linked tag.
func (c *converger) linkSameHost(ctx context.Context, lab string, req wire.SameHostLinkRequest) (wire.SameHostLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	linkID := ident.LinkName(req.SourceNode+":"+req.SourceInterface, req.TargetNode+":"+req.TargetInterface)
	obs, err := c.observeForTags(ctx)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	a, err := c.nodePortOf(obs, lab, req.SourceNode, req.SourceInterface)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	b, err := c.nodePortOf(obs, lab, req.TargetNode, req.TargetInterface)
	if err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	tag := c.ports[a].Tag
	if tag != c.ports[b].Tag || !vlan.Linked.Contains(tag) {
		if tag, err = c.tags.Allocate(vlan.Linked); err != nil {
			return wire.SameHostLinkResponse{}, err
		}
	}
	if err := c.setPortTags(ctx, map[string]int{a: tag, b: tag}); err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	c.log.Info("same-host link up", "lab", lab, "link", linkID, "tag", tag)
	return wire.SameHostLinkResponse{Success: true, LinkID: linkID, VLANTag: &tag}, nil
}

// unlinkSameHost puts both ends of a same-host link on isolated tags of their
// own. The link id is "<node>:<iface>-<node>:<iface>"; since names may hold
// "-", every split is tried and exactly one must name two known ports.
func (c *converger) unlinkSameHost(ctx context.Context, lab, linkID string) (wire.SameHostLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observeForTags(ctx)
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
	if err := c.setPortTags(ctx, tags); err != nil {
		return wire.SameHostLinkResponse{}, err
	}
	c.log.Info("same-host link down", "lab", lab, "link", linkID)
	return wire.SameHostLinkResponse{Success: true, LinkID: linkID}, nil
}

// endpointPort resolves "node:iface" to a known node port.
func (c *converger) endpointPort(obs fabric.Observed, lab, endpoint string) (string, bool) {
	node, iface, ok := strings.Cut(endpoint, ":")
	if !ok {
		return "", false
	}
	name, err := c.nodePortOf(obs, lab, node, iface)
	return name, err == nil
}

// setPortTags retags node ports in one transaction and keeps the new tags.
// The caller holds c.mu.
func (c *converger) setPortTags(ctx context.Context, tags map[string]int) error {
	if err := c.driver.Apply(ctx, fabric.Plan{Retag: tags}); err != nil {
		return err
	}
	for name, tag := range tags {
		p := c.ports[name]
		p.Tag = tag
		c.ports[name] = p
	}
	return nil
}

// attach makes this host's side of a cross-host link: the node port and the
// link's VXLAN port on one linked tag. Attaching again keeps the tag.
func (c *converger) attach(ctx context.Context, req wire.AttachLinkRequest) (wire.AttachLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observeForTags(ctx)
	if err != nil {
		return wire.AttachLinkResponse{}, err
	}
	nodePortName, err := c.nodePortOf(obs, req.LabID, req.ContainerName, req.InterfaceName)
	if err != nil {
		return wire.AttachLinkResponse{}, err
	}
	portName := ident.PortName(req.LabID, req.LinkID)
	tag := 0
	if t, ok := c.tunnels[portName]; ok && c.ports[nodePortName].Tag == t.ExpectedVLAN {
		tag = t.ExpectedVLAN
	} else if tag, err = c.tags.Allocate(vlan.Linked); err != nil {
		return wire.AttachLinkResponse{}, err
	}
	t := wire.DeclaredTunnel{
		LinkID: req.LinkID, LabID: req.LabID, VNI: req.VNI, LocalIP: req.LocalIP, RemoteIP: req.RemoteIP,
		ExpectedVLAN: tag, PortName: portName, MTU: req.TenantMTU,
	}
	tp := planTunnels([]wire.DeclaredTunnel{t}, nil, obs, c.mtu, false)
	if c.ports[nodePortName].Tag != tag {
		tp.plan.Retag[nodePortName] = tag
		tp.changed[portName] = true
	}
	c.apply(ctx, &tp)
	if r := tp.results[0]; r.Status == wire.StatusError {
		return wire.AttachLinkResponse{Success: false, Error: r.Error}, nil
	}
	p := c.ports[nodePortName]
	p.Tag = tag
	c.ports[nodePortName] = p
	c.tunnels[portName] = t
	c.writeCache(c.tunnels, c.generation)
	c.log.Info("link attached", "lab", req.LabID, "link", req.LinkID, "port", portName, "tag", tag, "vni", req.VNI)
	vni := req.VNI
	return wire.AttachLinkResponse{Success: true, LocalVLAN: &tag, VNI: &vni, PortName: portName}, nil
}

// detach removes this host's side of a cross-host link: the node port goes
// to an isolated tag of its own, the VXLAN port and device go. Detaching
// what is gone already succeeds.
func (c *converger) detach(ctx context.Context, req wire.DetachLinkRequest) (wire.DetachLinkResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.observeForTags(ctx)
	if err != nil {
		return wire.DetachLinkResponse{}, err
	}
	resp := wire.DetachLinkResponse{Success: true}
	plan := fabric.Plan{Retag: map[string]int{}}
	if nodePortName, err := c.nodePortOf(obs, req.LabID, req.ContainerName, req.InterfaceName); err == nil {
		tag, err := c.tags.Allocate(vlan.Isolated)
		if err != nil {
			return wire.DetachLinkResponse{}, err
		}
		plan.Retag[nodePortName] = tag
		resp.InterfaceIsolated, resp.NewVLAN = true, &tag
	}
	portName := ident.PortName(req.LabID, req.LinkID)
	if p, ok := obs.Ports[portName]; ok && isTunnelPort(portName, p) {
		plan.DeletePorts = append(plan.DeletePorts, portName)
	}
	if _, ok := obs.Devices[portName]; ok {
		plan.DeleteDevices = append(plan.DeleteDevices, portName)
		resp.TunnelDeleted = true
	}
	if err := c.driver.Apply(ctx, plan); err != nil {
		return wire.DetachLinkResponse{}, err
	}
	for name, tag := range plan.Retag {
		p := c.ports[name]
		p.Tag = tag
		c.ports[name] = p
	}
	if _, ok := c.tunnels[portName]; ok {
		delete(c.tunnels, portName)
		c.writeCache(c.tunnels, c.generation)
	}
	c.log.Info("link detached", "lab", req.LabID, "link", req.LinkID, "port", portName)
	return resp, nil
}

// cleanup tears a lab down on this host: its tunnels, its node ports and
// its nodes.
func (c *converger) cleanup(ctx context.Context, lab string) (wire.CleanupResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := wire.CleanupResponse{Errors: []string{}}
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return resp, err
	}
	var plan fabric.Plan
	for _, name := range slices.Sorted(maps.Keys(obs.Ports)) {
		p := obs.Ports[name]
		if !p.Owned() || p.Owner.Lab != lab {
			continue
		}
		plan.DeletePorts = append(plan.DeletePorts, name)
		if isTunnelPort(name, p) {
			resp.TunnelsDeleted++
		}
	}
	for name, t := range c.tunnels {
		if t.LabID == lab {
			if _, ok := obs.Devices[name]; ok {
				plan.DeleteDevices = append(plan.DeleteDevices, name)
			}
		}
	}
	if err := c.driver.Apply(ctx, plan); err != nil {
		return resp, err
	}
	maps.DeleteFunc(c.tunnels, func(_ string, t wire.DeclaredTunnel) bool { return t.LabID == lab })
	maps.DeleteFunc(c.ports, func(_ string, p nodePort) bool { return p.Lab == lab })
	c.writeCache(c.tunnels, c.generation)
	ports, err := c.runtime.Ports(ctx, lab)
	if err != nil {
		resp.Errors = append(resp.Errors, err.Error())
	}
	nodes := map[string]bool{}
	for _, p := range ports {
		nodes[p.Node] = true
	}
	for _, node := range slices.Sorted(maps.Keys(nodes)) {
		if err := c.runtime.DeleteNode(ctx, lab, node); err != nil {
			resp.Errors = append(resp.Errors, err.Error())
			continue
		}
		resp.NodesDeleted++
	}
	c.log.Info("lab cleaned up", "lab", lab, "tunnels", resp.TunnelsDeleted, "nodes", resp.NodesDeleted)
	return resp, nil
}

// setVLAN retags one of netloom's ports by hand, and keeps the new tag.
func (c *converger) setVLAN(ctx context.Context, port string, req wire.SetVLANRequest) (wire.SetVLANResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.driver.Observe(ctx)
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
	if err := c.driver.Apply(ctx, fabric.Plan{Retag: map[string]int{port: req.VLANTag}}); err != nil {
		return wire.SetVLANResponse{}, err
	}
	resp := wire.SetVLANResponse{Success: true, PortName: port, VLANTag: req.VLANTag}
	if t, ok := c.tunnels[port]; ok {
		t.ExpectedVLAN = req.VLANTag
		c.tunnels[port] = t
		c.writeCache(c.tunnels, c.generation)
		resp.InMemoryUpdated = true
	}
	if np, ok := c.ports[port]; ok {
		np.Tag = req.VLANTag
		c.ports[port] = np
		resp.InMemoryUpdated = true
	}
	return resp, nil
}

// declarePorts converges same-host pairings: both ports must exist, be node
// ports of the pairing's lab, and end on its tag. All retags go in one
// transaction.
func (c *converger) declarePorts(ctx context.Context, req wire.PortDeclareRequest) (wire.PortDeclareResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return wire.PortDeclareResponse{}, err
	}
	resp := wire.PortDeclareResponse{Results: []wire.PortResult{}}
	retag := map[string]int{}
	pending := map[int]bool{} // results that depend on the transaction
	for i, pr := range req.Pairings {
		res := wire.PortResult{LinkName: pr.LinkName, LabID: pr.LabID}
		var problems []string
		for _, name := range []string{pr.PortA, pr.PortB} {
			p, ok := obs.Ports[name]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("port %s is not on the bridge", name))
			case !p.Owned() || p.Owner.Lab != pr.LabID || p.Owner.Node == "":
				problems = append(problems, fmt.Sprintf("port %s is not a node port of lab %s", name, pr.LabID))
			}
		}
		if len(problems) > 0 {
			msg := strings.Join(problems, "; ")
			res.Status, res.Error = wire.StatusError, &msg
			resp.Results = append(resp.Results, res)
			continue
		}
		tag := pr.VLANTag
		res.ActualVLAN, res.Status = &tag, wire.StatusConverged
		for _, name := range []string{pr.PortA, pr.PortB} {
			if obs.Ports[name].Tag != tag {
				retag[name] = tag
				res.Status = wire.StatusUpdated
				pending[i] = true
			}
		}
		resp.Results = append(resp.Results, res)
	}
	if len(retag) > 0 {
		if err := c.driver.Apply(ctx, fabric.Plan{Retag: retag}); err != nil {
			msg := err.Error()
			for i := range pending {
				resp.Results[i].Status, resp.Results[i].Error, resp.Results[i].ActualVLAN = wire.StatusError, &msg, nil
			}
			return resp, nil
		}
	}
	for i, pr := range req.Pairings {
		if resp.Results[i].Status == wire.StatusError {
			continue
		}
		for _, name := range []string{pr.PortA, pr.PortB} {
			if np, ok := c.ports[name]; ok {
				np.Tag = pr.VLANTag
				c.ports[name] = np
			}
		}
	}
	return resp, nil
}

// reconcilePorts is the old whitelist: every netloom tunnel port not named
// is removed, with the original's guards. Unmarked ports are never touched,
// and what is removed is also forgotten, so repair does not bring it back
// (W-8).
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
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return resp, err
	}
	valid := map[string]bool{}
	for _, n := range req.ValidPortNames {
		valid[n] = true
	}
	var plan fabric.Plan
	for _, name := range slices.Sorted(maps.Keys(obs.Ports)) {
		if valid[name] || !isTunnelPort(name, obs.Ports[name]) {
			continue
		}
		plan.DeletePorts = append(plan.DeletePorts, name)
		if _, ok := obs.Devices[name]; ok {
			plan.DeleteDevices = append(plan.DeleteDevices, name)
		}
	}
	if err := c.driver.Apply(ctx, plan); err != nil {
		return resp, err
	}
	for _, name := range plan.DeletePorts {
		delete(c.tunnels, name)
	}
	if len(plan.DeletePorts) > 0 {
		c.writeCache(c.tunnels, c.generation)
		c.m.orphans.Add(float64(len(plan.DeletePorts)))
	}
	resp.RemovedPorts = append(resp.RemovedPorts, plan.DeletePorts...)
	return resp, nil
}

// portState reports a lab's node ports from one runtime read and one bridge
// read; carrier is the host end's operational state.
func (c *converger) portState(ctx context.Context, lab string) (wire.PortStateResponse, error) {
	ports, err := c.runtime.Ports(ctx, lab)
	if err != nil {
		return wire.PortStateResponse{}, err
	}
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return wire.PortStateResponse{}, err
	}
	resp := wire.PortStateResponse{Ports: []wire.PortState{}}
	for _, p := range ports {
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
	return resp, nil
}

// status reports the tunnels the agent keeps.
func (c *converger) status() wire.OverlayStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := wire.OverlayStatus{VTEPs: []any{}, Tunnels: []any{}, Bridges: []any{}, LinkTunnels: []wire.LinkTunnel{}, Generation: c.generation}
	for _, t := range c.tunnelList() {
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
