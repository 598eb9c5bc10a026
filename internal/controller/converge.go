package controller

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// declarations builds each host's full desired tunnel set from the
// database: every host gets one, even with no tunnels, scoped to the labs
// placed on it. A link being created is a placeholder on both its hosts, so
// the agents keep what the deploy is building (W-4). A tunnel is declared
// with its side's tag from the database; a missing tag is sent as 0, which
// the agent refuses rather than make a trunk (W-21).
func declarations(hosts []string, placed []store.Placed, links []store.LinkState) map[string]*wire.DeclareStateRequest {
	decls := map[string]*wire.DeclareStateRequest{}
	for _, h := range hosts {
		decls[h] = &wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: []string{}}
	}
	labs := map[string]map[string]bool{}
	addLab := func(host, lab string) {
		if labs[host] == nil {
			labs[host] = map[string]bool{}
		}
		labs[host][lab] = true
	}
	for _, p := range placed {
		addLab(p.Host, p.Lab)
	}
	for _, ls := range links {
		if !ls.CrossHost || ls.DesiredState != "up" {
			continue
		}
		port := ident.PortName(ls.LabID, ls.Name)
		if ls.ActualState == store.LinkCreating {
			for _, h := range []string{ls.SourceHost, ls.TargetHost} {
				if d := decls[h]; d != nil {
					d.Tunnels = append(d.Tunnels, wire.DeclaredTunnel{LinkID: ls.Name, LabID: ls.LabID, PortName: port, Placeholder: true})
					addLab(h, ls.LabID)
				}
			}
			continue
		}
		t := ls.Tunnel
		if t == nil || t.Status != "active" {
			continue
		}
		for _, side := range []struct {
			host, local, remote string
			tag                 *int
		}{{t.AgentA, t.IPA, t.IPB, ls.SourceTag}, {t.AgentB, t.IPB, t.IPA, ls.TargetTag}} {
			d := decls[side.host]
			if d == nil {
				continue
			}
			tag := 0
			if side.tag != nil {
				tag = *side.tag
			}
			d.Tunnels = append(d.Tunnels, wire.DeclaredTunnel{LinkID: ls.Name, LabID: ls.LabID, VNI: t.VNI, LocalIP: side.local,
				RemoteIP: side.remote, ExpectedVLAN: tag, PortName: t.PortName})
			addLab(side.host, ls.LabID)
		}
	}
	for h, d := range decls {
		d.DeclaredLabs = append(d.DeclaredLabs, slices.Sorted(maps.Keys(labs[h]))...) // [] rather than null when empty
	}
	return decls
}

// converge declares to every online agent (or those in only) its full
// tunnel set with a fresh generation, in parallel, falls back to the
// whitelist for an agent without declare-state (by status code, W-19),
// records the attached flags per side and keeps each agent's summary.
func (c *Controller) converge(ctx context.Context, only map[string]bool) (wire.ConvergeResponse, error) {
	c.convMu.Lock()
	defer c.convMu.Unlock()
	st, err := c.readConvState(ctx)
	if err != nil {
		return wire.ConvergeResponse{}, err
	}
	return c.declareAll(ctx, only, st)
}

// convState is what a convergence round reads from the store, once.
type convState struct {
	hosts  []store.Host
	placed []store.Placed
	links  []store.LinkState
}

func (c *Controller) readConvState(ctx context.Context) (convState, error) {
	hosts, placed, links, err := c.store.ConvergenceState(ctx)
	return convState{hosts: hosts, placed: placed, links: links}, err
}

// declareAll is converge on a state already read; the caller holds convMu.
func (c *Controller) declareAll(ctx context.Context, only map[string]bool, st convState) (wire.ConvergeResponse, error) {
	hosts, placed, links := st.hosts, st.placed, st.links
	gen, err := c.store.NextGeneration(ctx)
	if err != nil {
		return wire.ConvergeResponse{}, err
	}
	byName := map[string]store.Host{}
	var targets []string
	for _, h := range hosts {
		if c.online(h) && (only == nil || only[h.Name]) {
			byName[h.Name] = h
			targets = append(targets, h.Name)
		}
	}
	decls := declarations(targets, placed, links)
	resp := wire.ConvergeResponse{Generation: gen, Agents: []wire.AgentConvergence{}}
	results := map[string]wire.DeclareStateResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range targets {
		req := decls[name]
		req.Generation = &gen
		wg.Go(func() {
			sum, r := c.declareTo(ctx, byName[name], *req)
			mu.Lock()
			defer mu.Unlock()
			resp.Agents = append(resp.Agents, sum)
			results[name] = r
		})
	}
	wg.Wait()
	slices.SortFunc(resp.Agents, func(a, b wire.AgentConvergence) int { return strings.Compare(a.Host, b.Host) })
	if err := c.store.SetAttachments(ctx, attachmentChanges(links, results)); err != nil {
		return resp, err
	}
	c.mu.Lock()
	for _, s := range resp.Agents {
		c.summaries[s.Host] = s
	}
	c.mu.Unlock()
	c.log.Info("converged", "generation", gen, "agents", len(targets))
	return resp, nil
}

// convergePlan returns what converge would declare, without sending it.
func (c *Controller) convergePlan(ctx context.Context, only map[string]bool) (wire.ConvergePlan, error) {
	hosts, placed, links, err := c.store.ConvergenceState(ctx)
	if err != nil {
		return wire.ConvergePlan{}, err
	}
	var targets []string
	for _, h := range hosts {
		if c.online(h) && (only == nil || only[h.Name]) {
			targets = append(targets, h.Name)
		}
	}
	plan := wire.ConvergePlan{Agents: map[string]wire.DeclareStateRequest{}}
	for name, d := range declarations(targets, placed, links) {
		plan.Agents[name] = *d
	}
	return plan, nil
}

// declareTo sends one agent its declaration.
func (c *Controller) declareTo(ctx context.Context, h store.Host, req wire.DeclareStateRequest) (wire.AgentConvergence, wire.DeclareStateResponse) {
	sum := wire.AgentConvergence{Host: h.Name, Generation: *req.Generation, At: time.Now().UTC(), Tunnels: len(req.Tunnels),
		Results: map[string]int{}, OrphansRemoved: []string{}}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	ag := c.agent(h)
	resp, err := ag.DeclareState(cctx, req)
	if errors.Is(err, client.ErrNotFound) {
		// An old agent: the whitelist can only remove, never create or retag.
		sum.Fallback = true
		var valid []string
		for _, t := range req.Tunnels {
			valid = append(valid, t.PortName)
		}
		r, werr := ag.ReconcilePorts(cctx, wire.ReconcilePortsRequest{ValidPortNames: valid, Confirm: true})
		if werr != nil {
			sum.Error = werr.Error()
		} else {
			sum.OrphansRemoved = append(sum.OrphansRemoved, r.RemovedPorts...)
		}
		return sum, wire.DeclareStateResponse{}
	}
	if err != nil {
		sum.Error = err.Error()
		c.log.Warn("agent skipped in convergence", "host", h.Name, "err", err)
		return sum, wire.DeclareStateResponse{}
	}
	if resp.Skipped != nil {
		sum.Skipped = *resp.Skipped
	}
	for _, r := range resp.Results {
		sum.Results[r.Status]++
	}
	sum.OrphansRemoved = append(sum.OrphansRemoved, resp.OrphansRemoved...)
	return sum, resp
}

// attachmentChanges turns agents' results into the attached flags that
// changed, matched by (lab, link, side), never by link name alone (W-2).
func attachmentChanges(links []store.LinkState, results map[string]wire.DeclareStateResponse) []store.Attachment {
	type key struct{ lab, link string }
	byKey := map[key]store.LinkState{}
	for _, ls := range links {
		byKey[key{ls.LabID, ls.Name}] = ls
	}
	var changes []store.Attachment
	for host, resp := range results {
		for _, r := range resp.Results {
			if r.Status == wire.StatusProtected {
				continue
			}
			ls, ok := byKey[key{r.LabID, r.LinkID}]
			if !ok || ls.Tunnel == nil {
				continue
			}
			attached := r.Status != wire.StatusError
			switch host {
			case ls.Tunnel.AgentA:
				if ls.SourceAttached != attached {
					changes = append(changes, store.Attachment{LinkStateID: ls.ID, Source: true, Attached: attached})
				}
			case ls.Tunnel.AgentB:
				if ls.TargetAttached != attached {
					changes = append(changes, store.Attachment{LinkStateID: ls.ID, Source: false, Attached: attached})
				}
			}
		}
	}
	return changes
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
