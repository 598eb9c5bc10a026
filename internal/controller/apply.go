package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// diff computes what makes the stored lab the new one.
func diff(old, next topology.Lab) store.LabChange {
	var c store.LabChange
	oldNodes := map[string]topology.Node{}
	for _, n := range old.Nodes {
		oldNodes[n.Name] = n
	}
	newNodes := map[string]bool{}
	for _, n := range next.Nodes {
		newNodes[n.Name] = true
		o, ok := oldNodes[n.Name]
		switch {
		case !ok:
			c.AddNodes = append(c.AddNodes, n)
		case o.Kind != n.Kind || o.Image != n.Image || o.Host != n.Host || !slices.Equal(o.Exec, n.Exec):
			c.ChangeNodes = append(c.ChangeNodes, n)
		}
	}
	for _, n := range old.Nodes {
		if !newNodes[n.Name] {
			c.RemoveNodes = append(c.RemoveNodes, n.Name)
		}
	}
	oldLinks := map[string]bool{}
	for _, l := range old.Links {
		oldLinks[l.Name()] = true
	}
	newLinks := map[string]bool{}
	for _, l := range next.Links {
		newLinks[l.Name()] = true
		if !oldLinks[l.Name()] {
			c.AddLinks = append(c.AddLinks, l)
		}
	}
	for _, l := range old.Links {
		if !newLinks[l.Name()] {
			c.RemoveLinks = append(c.RemoveLinks, l.Name())
		}
	}
	return c
}

// specOf rebuilds the lab file a stored lab came from.
func specOf(v store.LabView) topology.Lab {
	spec := topology.Lab{Name: v.Name}
	for _, n := range v.Nodes {
		spec.Nodes = append(spec.Nodes, topology.Node{Name: n.Name, Kind: n.Kind, Image: n.Image, Host: n.Host, Exec: n.Exec})
	}
	for _, ls := range v.Links {
		spec.Links = append(spec.Links, topology.Link{A: topology.Endpoint{Node: ls.SourceNode, Iface: ls.SourceIface},
			B: topology.Endpoint{Node: ls.TargetNode, Iface: ls.TargetIface}})
	}
	return spec
}

func planOf(c store.LabChange) wire.LabPlan {
	p := wire.LabPlan{AddNodes: []string{}, RemoveNodes: []string{}, ChangeNodes: []string{}, AddLinks: []string{}, RemoveLinks: []string{}}
	for _, n := range c.AddNodes {
		p.AddNodes = append(p.AddNodes, n.Name)
	}
	p.RemoveNodes = append(p.RemoveNodes, c.RemoveNodes...)
	for _, n := range c.ChangeNodes {
		p.ChangeNodes = append(p.ChangeNodes, n.Name)
	}
	for _, l := range c.AddLinks {
		p.AddLinks = append(p.AddLinks, l.Name())
	}
	p.RemoveLinks = append(p.RemoveLinks, c.RemoveLinks...)
	return p
}

// apply makes a lab what its file says: created if new, otherwise the
// links and nodes that left or changed are torn down on their hosts and the
// change stored; then the lab is deployed, which makes what is new and
// leaves alone what is up. With planOnly it says what it would do.
func (c *Controller) apply(ctx context.Context, lab topology.Lab, planOnly bool) (wire.ApplyResponse, error) {
	lock := c.labLock(lab.Name)
	lock.Lock()
	defer lock.Unlock()
	resp := wire.ApplyResponse{Lab: lab.Name, Warnings: lab.Warnings()}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	v, err := c.store.LabView(ctx, lab.Name)
	var change store.LabChange
	switch {
	case errors.Is(err, store.ErrNotFound):
		resp.Created = true
		change = diff(topology.Lab{}, lab)
	case err != nil:
		return resp, err
	default:
		change = diff(specOf(v), lab)
	}
	resp.Plan = planOf(change)
	if planOnly {
		return resp, nil
	}
	if resp.Created {
		if _, err := c.store.CreateLab(ctx, lab); err != nil {
			return resp, err
		}
	} else if !change.Empty() {
		c.convMu.Lock()
		err := c.teardownChanged(ctx, v, change)
		if err == nil {
			err = c.store.UpdateLab(ctx, v.ID, change)
		}
		c.convMu.Unlock()
		if err != nil {
			return resp, err
		}
	}
	dep, err := c.deployLocked(ctx, lab.Name)
	if err != nil {
		return resp, err
	}
	resp.Deploy = &dep
	return resp, nil
}

// teardownChanged undoes, on the agents, the links and nodes a change
// removes, and the nodes it moves to another host.
func (c *Controller) teardownChanged(ctx context.Context, v store.LabView, change store.LabChange) error {
	hosts, err := c.hostsByName(ctx)
	if err != nil {
		return err
	}
	removed := map[string]bool{}
	for _, name := range change.RemoveLinks {
		removed[name] = true
	}
	var errs []error
	for _, ls := range v.Links {
		if !removed[ls.Name] || ls.SourceHost == "" {
			continue
		}
		if !ls.CrossHost {
			cctx, cancel := c.callCtx(ctx)
			_, err := c.agent(hosts[ls.SourceHost]).UnlinkSameHost(cctx, v.Name, ls.Name)
			cancel()
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				errs = append(errs, fmt.Errorf("unlink %s on %s: %w", ls.Name, ls.SourceHost, err))
			}
			continue
		}
		for _, side := range []struct{ host, node, iface string }{{ls.SourceHost, ls.SourceNode, ls.SourceIface}, {ls.TargetHost, ls.TargetNode, ls.TargetIface}} {
			cctx, cancel := c.callCtx(ctx)
			_, err := c.agent(hosts[side.host]).Detach(cctx, wire.DetachLinkRequest{LabID: v.Name, ContainerName: side.node, InterfaceName: side.iface, LinkID: ls.Name})
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("detach %s on %s: %w", ls.Name, side.host, err))
			}
		}
	}
	gone := map[string]bool{}
	for _, n := range change.RemoveNodes {
		gone[n] = true
	}
	for _, n := range change.ChangeNodes {
		gone[n.Name] = true // made again by the deploy, with its new settings
	}
	for _, n := range v.Nodes {
		if !gone[n.Name] || n.PlacedOn == "" {
			continue
		}
		cctx, cancel := c.callCtx(ctx)
		err := c.agent(hosts[n.PlacedOn]).DeleteNode(cctx, v.Name, n.Name)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete node %s on %s: %w", n.Name, n.PlacedOn, err))
		}
	}
	return errors.Join(errs...)
}
