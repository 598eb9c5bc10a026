package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// attachAttempts bounds the attempts at one side of a cross-host link.
const attachAttempts = 3

// deploy places a lab's nodes, creates them on their agents, then makes its
// links, and records every outcome. Per-node and per-link failures are in
// the result; the error is for what stops the whole deploy.
func (c *Controller) deploy(ctx context.Context, labName string) (wire.DeployResponse, error) {
	lock := c.labLock(labName)
	lock.Lock()
	defer lock.Unlock()
	return c.deployLocked(ctx, labName)
}

// deployLocked is deploy for a caller that holds the lab's lock.
func (c *Controller) deployLocked(ctx context.Context, labName string) (wire.DeployResponse, error) {
	v, err := c.store.LabView(ctx, labName)
	if err != nil {
		return wire.DeployResponse{}, err
	}
	hosts, err := c.hostsByName(ctx)
	if err != nil {
		return wire.DeployResponse{}, err
	}
	var online []string
	for name, h := range hosts {
		if c.online(h) {
			online = append(online, name)
		}
	}
	load, err := c.store.NodeLoad(ctx)
	if err != nil {
		return wire.DeployResponse{}, err
	}
	for _, n := range v.Nodes { // this lab's own nodes do not count against a host
		if n.PlacedOn != "" {
			load[n.PlacedOn]--
		}
	}
	spec := specOf(v)
	placement, err := place(spec.Nodes, spec.Links, online, load)
	if err != nil {
		return wire.DeployResponse{}, fmt.Errorf("deploy %s: %w", labName, err)
	}
	if err := c.store.SetPlacements(ctx, v.ID, placement); err != nil {
		return wire.DeployResponse{}, err
	}
	if err := c.store.SetLabState(ctx, v.ID, store.LabStarting, ""); err != nil {
		return wire.DeployResponse{}, err
	}
	log := c.log.With("lab", labName)
	resp := wire.DeployResponse{Lab: labName, Nodes: []wire.NodeResult{}, Links: []wire.LinkResult{}}

	// Nodes, one goroutine per host.
	ifaces := map[string][]wire.NodeInterface{}
	for _, ls := range v.Links {
		ifaces[ls.SourceNode] = append(ifaces[ls.SourceNode], wire.NodeInterface{Name: ls.SourceIface})
		ifaces[ls.TargetNode] = append(ifaces[ls.TargetNode], wire.NodeInterface{Name: ls.TargetIface})
	}
	nodeErr := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	byHost := map[string][]string{}
	for _, n := range v.Nodes {
		byHost[placement[n.Name]] = append(byHost[placement[n.Name]], n.Name)
	}
	mappings := map[string]store.Mapping{} // by "node:iface", written once after the links
	execs := map[string][]string{}
	for _, n := range v.Nodes {
		execs[n.Name] = n.Exec
	}
	for host, nodes := range byHost {
		wg.Go(func() {
			for _, node := range nodes {
				ctx, cancel := c.callCtx(ctx)
				nr, err := c.agent(hosts[host]).CreateNode(ctx, labName, wire.CreateNodeRequest{Name: node, Interfaces: ifaces[node], Exec: execs[node]})
				cancel()
				status, why := "deployed", ""
				if err != nil {
					status, why = "failed", fmt.Sprintf("create on %s: %v", host, err)
					log.Warn("node not created", "node", node, "host", host, "err", err)
				}
				if serr := c.store.SetPlacementStatus(context.WithoutCancel(ctx), labName, node, status, nr.RuntimeID, why); serr != nil {
					err = errors.Join(err, serr)
				}
				mu.Lock()
				nodeErr[node] = err
				for _, p := range nr.Ports {
					mappings[node+":"+p.Interface] = store.Mapping{Node: node, Iface: p.Interface, OVSPort: p.PortName, Tag: p.VLANTag}
				}
				resp.Nodes = append(resp.Nodes, wire.NodeResult{Name: node, Host: host, Status: status, Error: why, ExecErrors: nr.ExecErrors})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(resp.Nodes, func(a, b wire.NodeResult) int { return strings.Compare(a.Name, b.Name) })
	// Links.
	failed := 0
	for _, ls := range v.Links {
		res, tags := c.deployLink(ctx, v, ls, placement, hosts, nodeErr)
		if res.Status != store.LinkUp {
			failed++
		}
		resp.Links = append(resp.Links, res)
		for i, ep := range []string{ls.SourceNode + ":" + ls.SourceIface, ls.TargetNode + ":" + ls.TargetIface} {
			if m, ok := mappings[ep]; ok && tags[i] > 0 {
				m.Tag = tags[i]
				mappings[ep] = m
			}
		}
	}
	if err := c.store.UpsertMappings(ctx, v.ID, slices.Collect(maps.Values(mappings))); err != nil {
		return wire.DeployResponse{}, err
	}
	nodesFailed := 0
	for _, err := range nodeErr {
		if err != nil {
			nodesFailed++
		}
	}
	resp.State = store.LabRunning
	if failed > 0 || nodesFailed > 0 {
		resp.State = store.LabError
		resp.Error = fmt.Sprintf("%d of %d nodes and %d of %d links failed", nodesFailed, len(v.Nodes), failed, len(v.Links))
	}
	if err := c.store.SetLabState(ctx, v.ID, resp.State, resp.Error); err != nil {
		return resp, err
	}
	log.Info("lab deployed", "state", resp.State, "nodes", len(v.Nodes), "links", len(v.Links), "failed_links", failed)
	return resp, nil
}

// deployLink makes one link, records the outcome, and returns the tags of
// its two ends (0 where unknown).
func (c *Controller) deployLink(ctx context.Context, v store.LabView, ls store.LinkState, placement map[string]string,
	hosts map[string]store.Host, nodeErr map[string]error) (wire.LinkResult, [2]int) {
	res := wire.LinkResult{LinkName: ls.Name}
	fail := func(state, why string, partial []string) wire.LinkResult {
		if err := c.store.SetLinkFailed(context.WithoutCancel(ctx), ls.ID, state, why, partial); err != nil {
			why += "; and not recorded: " + err.Error()
		}
		res.Status, res.Error = state, why
		c.log.Warn("link failed", "lab", v.Name, "link", ls.Name, "err", why)
		return res
	}
	var none [2]int
	for _, node := range []string{ls.SourceNode, ls.TargetNode} {
		if err := nodeErr[node]; err != nil {
			return fail(store.LinkError, fmt.Sprintf("node %s on %s is not deployed: %v", node, placement[node], err), nil), none
		}
	}
	src, dst := placement[ls.SourceNode], placement[ls.TargetNode]
	if ls.ActualState == store.LinkUp && src == dst && ls.SourceHost == src {
		res.Status = store.LinkUp
		return res, [2]int{deref(ls.SourceTag), deref(ls.TargetTag)} // a same-host link that is up stays as it is
	}
	// Committed before any agent is called: convergence sees it as in progress (W-4).
	if err := c.store.SetLinkCreating(ctx, ls.ID, src, dst); err != nil {
		return fail(store.LinkError, "record creating: "+err.Error(), nil), none
	}
	if src == dst {
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		r, err := c.agent(hosts[src]).LinkSameHost(cctx, v.Name, wire.SameHostLinkRequest{
			SourceNode: ls.SourceNode, SourceInterface: ls.SourceIface, TargetNode: ls.TargetNode, TargetInterface: ls.TargetIface})
		if err == nil && (!r.Success || r.VLANTag == nil) {
			err = fmt.Errorf("agent answered %+v", r)
		}
		if err != nil {
			return fail(store.LinkError, fmt.Sprintf("%s: %v", src, err), nil), none
		}
		if err := c.store.SetSameHostUp(ctx, ls.ID, *r.VLANTag); err != nil {
			return fail(store.LinkError, "record up: "+err.Error(), nil), none
		}
		res.Status = store.LinkUp
		return res, [2]int{*r.VLANTag, *r.VLANTag}
	}
	return c.deployCrossHost(ctx, v, ls, hosts[src], hosts[dst], fail)
}

// deployCrossHost attaches both sides of a cross-host link in parallel,
// rolling one side back when the other fails.
func (c *Controller) deployCrossHost(ctx context.Context, v store.LabView, ls store.LinkState, a, b store.Host,
	fail func(state, why string, partial []string) wire.LinkResult) (wire.LinkResult, [2]int) {
	var none [2]int
	vni, err := c.store.AllocateVNI(ctx, ls.ID, v.Name, ls.Name)
	if err != nil {
		return fail(store.LinkError, err.Error(), nil), none
	}
	type side struct {
		host store.Host
		req  wire.AttachLinkRequest
		resp wire.AttachLinkResponse
		err  error
	}
	sides := []*side{
		{host: a, req: wire.AttachLinkRequest{LabID: v.Name, ContainerName: ls.SourceNode, InterfaceName: ls.SourceIface, VNI: vni,
			LocalIP: a.DataIP, RemoteIP: b.DataIP, LinkID: ls.Name}},
		{host: b, req: wire.AttachLinkRequest{LabID: v.Name, ContainerName: ls.TargetNode, InterfaceName: ls.TargetIface, VNI: vni,
			LocalIP: b.DataIP, RemoteIP: a.DataIP, LinkID: ls.Name}},
	}
	var wg sync.WaitGroup
	for _, s := range sides {
		wg.Go(func() {
			for attempt := 1; attempt <= attachAttempts; attempt++ {
				cctx, cancel := c.callCtx(ctx)
				s.resp, s.err = c.agent(s.host).Attach(cctx, s.req)
				cancel()
				if s.err == nil || !errors.Is(s.err, client.ErrUnreachable) && !errors.Is(s.err, client.ErrAgentFailed) || attempt == attachAttempts {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	var problems []string
	var attached []*side
	for _, s := range sides {
		if s.err != nil {
			problems = append(problems, fmt.Sprintf("%s:%s:%s: %v", s.host.Name, s.req.ContainerName, s.req.InterfaceName, s.err))
		} else {
			attached = append(attached, s)
		}
	}
	if len(problems) > 0 {
		why := "per-link tunnel creation failed: " + strings.Join(problems, "; ")
		var holding []string
		for _, s := range attached {
			cctx, cancel := c.callCtx(ctx)
			_, derr := c.agent(s.host).Detach(cctx, wire.DetachLinkRequest{LabID: v.Name, ContainerName: s.req.ContainerName,
				InterfaceName: s.req.InterfaceName, LinkID: ls.Name})
			cancel()
			if derr != nil {
				holding = append(holding, s.host.Name)
				why += fmt.Sprintf("; rollback on %s failed: %v", s.host.Name, derr)
			}
		}
		if len(holding) > 0 {
			return fail(store.LinkError, store.PartialStatePrefix+why, holding), none
		}
		return fail(store.LinkError, why, nil), none
	}
	up := store.CrossHostUp{LinkStateID: ls.ID, LabID: v.ID, LinkName: ls.Name, VNI: vni,
		SourceTag: *sides[0].resp.LocalVLAN, TargetTag: *sides[1].resp.LocalVLAN,
		SourceHost: a.Name, SourceIP: a.DataIP, TargetHost: b.Name, TargetIP: b.DataIP}
	if err := c.store.SetCrossHostUp(ctx, up); err != nil {
		return fail(store.LinkError, "record up: "+err.Error(), nil), none
	}
	return wire.LinkResult{LinkName: ls.Name, Status: store.LinkUp}, [2]int{up.SourceTag, up.TargetTag}
}

// destroy tears a lab down on every host it runs on. A host that cannot be
// reached keeps its placements and the lab stays "stopping" with the reason;
// the teardown finishes when the host registers again.
func (c *Controller) destroy(ctx context.Context, labName string) (wire.DeployResponse, error) {
	lock := c.labLock(labName)
	lock.Lock()
	defer lock.Unlock()
	v, err := c.store.LabView(ctx, labName)
	if err != nil {
		return wire.DeployResponse{}, err
	}
	hosts, err := c.hostsByName(ctx)
	if err != nil {
		return wire.DeployResponse{}, err
	}
	if err := c.store.SetLabState(ctx, v.ID, store.LabStopping, ""); err != nil {
		return wire.DeployResponse{}, err
	}
	c.convMu.Lock()
	defer c.convMu.Unlock()
	involved := map[string]bool{}
	for _, n := range v.Nodes {
		if n.PlacedOn != "" {
			involved[n.PlacedOn] = true
		}
	}
	var deferred []string
	for _, host := range slices.Sorted(maps.Keys(involved)) {
		h, known := hosts[host]
		if !known {
			deferred = append(deferred, host+": unknown host")
			continue
		}
		cctx, cancel := c.callCtx(ctx)
		_, err := c.agent(h).Cleanup(cctx, v.Name)
		cancel()
		if err != nil {
			deferred = append(deferred, fmt.Sprintf("%s: %v", host, err))
			continue
		}
		if err := c.store.DeletePlacements(ctx, v.ID, host); err != nil {
			return wire.DeployResponse{}, err
		}
	}
	resp := wire.DeployResponse{Lab: labName, Nodes: []wire.NodeResult{}, Links: []wire.LinkResult{}}
	if len(deferred) > 0 {
		resp.State, resp.Error = store.LabStopping, "teardown deferred until the hosts return: "+strings.Join(deferred, "; ")
		c.log.Warn("teardown deferred", "lab", labName, "hosts", deferred)
		return resp, c.store.SetLabState(ctx, v.ID, resp.State, resp.Error)
	}
	if err := c.store.ResetLinks(ctx, v.ID); err != nil {
		return wire.DeployResponse{}, err
	}
	resp.State = store.LabStopped
	c.log.Info("lab destroyed", "lab", labName)
	return resp, c.store.SetLabState(ctx, v.ID, store.LabStopped, "")
}

// resumeTeardowns finishes the deferred teardowns of labs, after a host
// returned.
func (c *Controller) resumeTeardowns(ctx context.Context) {
	labs, err := c.store.Labs(ctx)
	if err != nil {
		c.log.Warn("deferred teardowns not resumed", "err", err)
		return
	}
	for _, l := range labs {
		if l.State != store.LabStopping {
			continue
		}
		if _, err := c.destroy(ctx, l.Name); err != nil {
			c.log.Warn("deferred teardown failed", "lab", l.Name, "err", err)
		}
	}
}

func (c *Controller) hostsByName(ctx context.Context) (map[string]store.Host, error) {
	list, err := c.store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	hosts := make(map[string]store.Host, len(list))
	for _, h := range list {
		hosts[h.Name] = h
	}
	return hosts, nil
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
