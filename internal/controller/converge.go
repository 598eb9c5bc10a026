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

// converge runs one convergence round for the hosts in only (every host
// when nil); nodes in omit are left out of their hosts' declarations.
func (c *Controller) converge(ctx context.Context, only map[string]bool, omit map[nodeKey]bool) (wire.ConvergeResponse, error) {
	c.convMu.Lock()
	defer c.convMu.Unlock()
	return c.roundLocked(ctx, only, omit)
}

// roundLocked is one convergence round; the caller holds convMu, so no
// other round, deploy or destroy can change the desired state between the
// read and the declarations (W-4). It reads the desired state once,
// allocates what is missing, declares to every target host its whole state
// under one fresh generation, in parallel, and records what the agents
// answered: node and link states, interface mappings, lab states, and the
// teardowns the hosts confirmed. A target that is offline is not called:
// what it holds becomes unknown.
func (c *Controller) roundLocked(ctx context.Context, only map[string]bool, omit map[nodeKey]bool) (wire.ConvergeResponse, error) {
	d, err := c.store.Desired(ctx)
	if err != nil {
		return wire.ConvergeResponse{}, err
	}
	allocs, tunnels, drop, problems := allocate(&d)
	for _, p := range problems {
		c.log.Error("link not allocated", "err", p)
	}
	if len(allocs)+len(tunnels)+len(drop) > 0 {
		if err := c.store.SaveAllocations(ctx, allocs, tunnels, drop); err != nil {
			return wire.ConvergeResponse{}, err
		}
	}
	mgmt, problems := allocateMgmt(&d)
	for _, p := range problems {
		c.log.Error("management network not allocated", "err", p)
	}
	if !mgmt.Empty() {
		if err := c.store.SaveMgmt(ctx, mgmt); err != nil {
			return wire.ConvergeResponse{}, err
		}
	}
	decls := hostDeclarations(d, omit)
	gen, err := c.store.NextGeneration(ctx)
	if err != nil {
		return wire.ConvergeResponse{}, err
	}
	resp := wire.ConvergeResponse{Generation: gen, Agents: []wire.AgentConvergence{}}
	answers := map[string]*hostAnswer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range d.Hosts {
		if only != nil && !only[h.Name] {
			continue
		}
		if !c.online(h) {
			a := newHostAnswer(h.Name)
			a.unknown = h.Name + " offline"
			mu.Lock() // the other hosts' answers arrive meanwhile
			answers[h.Name] = a
			mu.Unlock()
			continue
		}
		decl := decls[h.Name]
		decl.Generation = &gen
		wg.Go(func() {
			sum, a := c.declareTo(ctx, h, *decl)
			mu.Lock()
			defer mu.Unlock()
			resp.Agents = append(resp.Agents, sum)
			answers[h.Name] = a
		})
	}
	wg.Wait()
	slices.SortFunc(resp.Agents, func(a, b wire.AgentConvergence) int { return strings.Compare(a.Host, b.Host) })
	c.mu.Lock()
	for _, s := range resp.Agents {
		c.summaries[s.Host] = s
	}
	c.mu.Unlock()

	if err := c.store.RecordObservations(ctx, time.Now(), observe(&d, answers, omit)); err != nil {
		return resp, err
	}
	if err := c.recordLabs(ctx, d, answers); err != nil {
		return resp, err
	}
	c.log.Info("converged", "generation", gen, "agents", len(resp.Agents))
	return resp, nil
}

// recordLabs writes the states of labs that changed: running labs from
// their nodes and links, and stopping labs, which stop once every host that
// held them answered a declaration without them.
func (c *Controller) recordLabs(ctx context.Context, d store.Desired, answers map[string]*hostAnswer) error {
	nodes := map[string][]store.LabNode{}
	for _, n := range d.Nodes {
		nodes[n.Lab] = append(nodes[n.Lab], n)
	}
	links := map[string][]store.LinkState{}
	for _, ls := range d.Links {
		links[ls.LabID] = append(links[ls.LabID], ls)
	}
	mgmt := map[string][]store.MgmtSegment{}
	for _, m := range d.Mgmt {
		mgmt[m.LabID] = append(mgmt[m.LabID], m)
	}
	stopping := false
	for _, l := range d.Labs {
		if l.State == store.LabStopping {
			stopping = true
		}
		if !runs(l.State) {
			continue
		}
		state, why := labState(nodes[l.ID], links[l.ID], mgmt[l.ID])
		if state == l.State && why == l.StateError {
			continue
		}
		if err := c.store.SetLabState(ctx, l.ID, state, why); err != nil {
			return err
		}
		c.log.Info("lab state", "lab", l.Name, "state", state, "why", why)
	}
	if !stopping {
		return nil
	}
	var confirmed []store.Teardown
	for _, l := range d.Labs {
		if l.State != store.LabStopping {
			continue
		}
		for host, a := range answers {
			if _, failed := a.unremoved[l.ID]; a.unknown == "" && !failed {
				confirmed = append(confirmed, store.Teardown{Host: host, Lab: l.ID})
			}
		}
	}
	done, err := c.store.ConfirmTeardowns(ctx, confirmed)
	if err != nil {
		return err
	}
	for _, l := range d.Labs {
		if l.State != store.LabStopping {
			continue
		}
		if slices.Contains(done, l.ID) {
			c.log.Info("lab destroyed", "lab", l.Name)
			continue
		}
		waiting := map[string]bool{}
		var failed []string
		for _, n := range nodes[l.ID] {
			if n.PlacedOn == "" || slices.Contains(confirmed, store.Teardown{Host: n.PlacedOn, Lab: l.ID}) {
				continue
			}
			if a := answers[n.PlacedOn]; a != nil && a.unremoved[l.ID] != "" {
				failed = append(failed, a.unremoved[l.ID])
			} else {
				waiting[n.PlacedOn] = true
			}
		}
		why := "teardown deferred until the hosts return: " + strings.Join(slices.Sorted(maps.Keys(waiting)), ", ")
		if len(failed) > 0 {
			slices.Sort(failed)
			why = "teardown incomplete, retried: " + strings.Join(slices.Compact(failed), "; ")
		}
		if why == l.StateError {
			continue
		}
		c.log.Warn("teardown deferred", "lab", l.Name, "hosts", slices.Sorted(maps.Keys(waiting)))
		if err := c.store.SetLabState(ctx, l.ID, store.LabStopping, why); err != nil {
			return err
		}
	}
	return nil
}

// convergePlan returns what a round would declare to the online hosts (those
// in only, when set), without sending or storing anything.
func (c *Controller) convergePlan(ctx context.Context, only map[string]bool) (wire.ConvergePlan, error) {
	d, err := c.store.Desired(ctx)
	if err != nil {
		return wire.ConvergePlan{}, err
	}
	allocate(&d)
	allocateMgmt(&d)
	decls := hostDeclarations(d, nil)
	plan := wire.ConvergePlan{Agents: map[string]wire.HostDeclaration{}}
	for _, h := range d.Hosts {
		if c.online(h) && (only == nil || only[h.Name]) {
			plan.Agents[h.Name] = *decls[h.Name]
		}
	}
	return plan, nil
}

// errOldAgent is why nothing but tunnels can be made on an agent without
// host declarations.
const errOldAgent = "the agent has no host declarations (POST /host/declare-state): nodes cannot be made there; upgrade it"

// declareTo sends one host its declaration and sorts out its answer. An
// agent without /host/declare-state gets its tunnels through
// /overlay/declare-state, and one without that the whitelist (by status
// code, W-19); on both its nodes and interfaces are errors.
func (c *Controller) declareTo(ctx context.Context, h store.Host, decl wire.HostDeclaration) (wire.AgentConvergence, *hostAnswer) {
	sum := wire.AgentConvergence{Host: h.Name, Generation: *decl.Generation, At: time.Now().UTC(), Nodes: len(decl.Nodes),
		Tunnels: len(decl.Tunnels), Results: map[string]int{}, OrphansRemoved: []string{}}
	for _, n := range decl.Nodes {
		sum.Interfaces += len(n.Interfaces)
	}
	a := newHostAnswer(h.Name)
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	ag := c.agent(h)
	resp, err := ag.DeclareHost(cctx, decl)
	if errors.Is(err, client.ErrNotFound) {
		sum.Fallback = true
		resp, err = declareOld(cctx, ag, decl)
	}
	if err != nil {
		sum.Error = err.Error()
		a.unknown = fmt.Sprintf("%s: %v", h.Name, err)
		if errors.Is(err, client.ErrUnreachable) {
			a.unknown = h.Name + " unreachable"
		}
		c.log.Warn("host not declared", "host", h.Name, "err", err)
		return sum, a
	}
	if resp.Skipped != nil {
		sum.Skipped = *resp.Skipped
		a.unknown = fmt.Sprintf("%s could not read its bridge (%s)", h.Name, *resp.Skipped)
		c.log.Warn("host skipped its declaration", "host", h.Name, "skipped", *resp.Skipped)
		return sum, a
	}
	declared := map[nodeKey]bool{}
	for _, n := range decl.Nodes {
		declared[nodeKey{n.LabID, n.Name}] = true
	}
	tunnels := map[linkKey]bool{}
	for _, t := range decl.Tunnels {
		tunnels[linkKey{t.LabID, t.LinkID}] = true
	}
	// An error on an object that is not declared is a removal that failed.
	unremoved := func(lab, what string, why *string) {
		a.unremoved[lab] = fmt.Sprintf("%s: %s not removed: %s", h.Name, what, text(why))
	}
	for _, n := range resp.Nodes {
		if n.Status == wire.StatusError && !declared[nodeKey{n.LabID, n.Name}] {
			unremoved(n.LabID, "node "+n.Name, n.Error)
			continue
		}
		if n.Status == wire.StatusRemoved {
			sum.OrphansRemoved = append(sum.OrphansRemoved, "node "+n.LabID+"/"+n.Name)
			continue
		}
		sum.Results[n.Status]++
		a.nodes[nodeKey{n.LabID, n.Name}] = n
	}
	for _, i := range resp.Interfaces {
		if i.Status == wire.StatusError && !declared[nodeKey{i.LabID, i.Node}] {
			unremoved(i.LabID, "port "+i.PortName, i.Error)
			continue
		}
		if i.Status == wire.StatusRemoved {
			sum.OrphansRemoved = append(sum.OrphansRemoved, i.PortName)
			continue
		}
		sum.Results[i.Status]++
		a.ifaces[ifaceKey{i.LabID, i.Node, i.Interface}] = i
	}
	for _, t := range resp.Tunnels {
		if t.Status == wire.StatusError && !tunnels[linkKey{t.LabID, t.LinkID}] {
			unremoved(t.LabID, "tunnel "+t.PortName, t.Error)
			continue
		}
		if t.Status == wire.StatusRemoved {
			sum.OrphansRemoved = append(sum.OrphansRemoved, t.PortName)
			continue
		}
		sum.Results[t.Status]++
		a.tunnels[linkKey{t.LabID, t.LinkID}] = t
	}
	return sum, a
}

// declareOld declares to an agent of the first stage what it can take, its
// tunnels, and answers as the host declaration would, with every node and
// interface an error.
func declareOld(ctx context.Context, ag *client.Client, decl wire.HostDeclaration) (wire.HostDeclarationResponse, error) {
	var resp wire.HostDeclarationResponse
	why := errOldAgent
	for _, n := range decl.Nodes {
		resp.Nodes = append(resp.Nodes, wire.NodeStatus{LabID: n.LabID, Name: n.Name, Status: wire.StatusError, Error: &why})
	}
	old, err := ag.DeclareState(ctx, wire.DeclareStateRequest{Tunnels: decl.Tunnels, DeclaredLabs: decl.DeclaredLabs, Generation: decl.Generation})
	if errors.Is(err, client.ErrNotFound) {
		// Older still: the whitelist can only remove, never create or retag.
		var valid []string
		for _, t := range decl.Tunnels {
			valid = append(valid, t.PortName)
		}
		r, err := ag.ReconcilePorts(ctx, wire.ReconcilePortsRequest{ValidPortNames: valid, Confirm: true})
		for _, p := range r.RemovedPorts {
			resp.Tunnels = append(resp.Tunnels, wire.TunnelResult{PortName: p, Status: wire.StatusRemoved})
		}
		return resp, err
	}
	if err != nil {
		return resp, err
	}
	resp.Skipped, resp.ObservedGeneration = old.Skipped, old.ObservedGeneration
	resp.Tunnels = append(resp.Tunnels, old.Results...)
	for _, p := range old.OrphansRemoved {
		resp.Tunnels = append(resp.Tunnels, wire.TunnelResult{PortName: p, Status: wire.StatusRemoved})
	}
	return resp, nil
}

// summariesNow lists each agent's last convergence.
func (c *Controller) summariesNow() wire.ConvergeResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := wire.ConvergeResponse{Agents: []wire.AgentConvergence{}}
	for _, name := range slices.Sorted(maps.Keys(c.summaries)) {
		s := c.summaries[name]
		resp.Agents = append(resp.Agents, s)
		resp.Generation = max(resp.Generation, s.Generation)
	}
	return resp
}
