package controller

import (
	"context"
	"fmt"
	"strings"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// deployment is what making a lab run changes: where its nodes go, and the
// hosts whose declarations change (where the lab runs, and where nodes
// leave).
type deployment struct {
	placement map[string]string // node → host
	moves     map[string]string // node → the host it leaves
	hosts     map[string]bool
}

// placeLab places a lab's nodes, sticky, against the hosts the store knows.
// v is the lab as stored before this change (empty for a new lab).
func (c *Controller) placeLab(ctx context.Context, v store.LabView, spec topology.Lab) (deployment, error) {
	hosts, err := c.store.Hosts(ctx)
	if err != nil {
		return deployment{}, err
	}
	known, offers := map[string]bool{}, map[string]map[string]bool{}
	var online []string
	for _, h := range hosts {
		known[h.Name] = true
		offers[h.Name] = offered(h.Capabilities)
		if c.online(h) {
			online = append(online, h.Name)
		}
	}
	load, err := c.store.NodeLoad(ctx)
	if err != nil {
		return deployment{}, err
	}
	current := map[string]string{}
	for _, n := range v.Nodes { // this lab's own nodes do not count against a host
		if n.PlacedOn != "" {
			load[n.PlacedOn]--
			current[n.Name] = n.PlacedOn
		}
	}
	placement, err := place(spec.Nodes, spec.Links, current, known, online, load, offers)
	if err != nil {
		return deployment{}, fmt.Errorf("deploy %s: %w", spec.Name, err)
	}
	underlay := map[string]int{}
	for _, h := range hosts {
		underlay[h.Name] = h.UnderlayMTU
	}
	var tooBig []string
	for _, l := range spec.Links {
		a, b := linkHosts(l, placement)
		if _, err := linkMTU(l.MTU, l.AllowFragmentation, a, b, underlay); err != nil {
			tooBig = append(tooBig, fmt.Sprintf("link %s: %v", l.Name(), err))
		}
	}
	if len(tooBig) > 0 {
		return deployment{}, fmt.Errorf("deploy %s: %w: %s", spec.Name, errPlacement, strings.Join(tooBig, "; "))
	}
	dep := deployment{placement: placement, moves: map[string]string{}, hosts: map[string]bool{}}
	for node, host := range current {
		dep.hosts[host] = true // where nodes leave, move or stay
		if to, ok := placement[node]; ok && to != host {
			dep.moves[node] = host
		}
	}
	for _, host := range placement {
		dep.hosts[host] = true
	}
	return dep, nil
}

// linkHosts is where a link's ends are: its nodes' hosts, a host endpoint
// on the host of the link's node.
func linkHosts(l topology.Link, placement map[string]string) (a, b string) {
	a, b = placement[l.A.Node], placement[l.B.Node]
	switch {
	case l.A.Node == wire.HostNode:
		a = b
	case l.B.Node == wire.HostNode:
		b = a
	}
	return a, b
}

// start records a lab's new and moved placements and marks it starting:
// from now on every round declares it.
func (c *Controller) start(ctx context.Context, v store.LabView, dep deployment) error {
	current := map[string]string{}
	for _, n := range v.Nodes {
		current[n.Name] = n.PlacedOn
	}
	changed := map[string]string{}
	for node, host := range dep.placement {
		if current[node] != host {
			changed[node] = host
		}
	}
	if err := c.store.SetPlacements(ctx, v.ID, changed); err != nil {
		return err
	}
	return c.store.SetLabState(ctx, v.ID, store.LabStarting, "")
}

// deploy makes a stored lab run: its nodes placed (sticky), the lab
// starting, then one round declares to its hosts. It runs on ctx to the
// end, whoever asked for it.
func (c *Controller) deploy(ctx context.Context, labName string) (wire.DeployResponse, error) {
	r, err := c.changeLocked(func() (*round, error) {
		v, err := c.store.LabView(ctx, labName)
		if err != nil {
			return nil, err
		}
		dep, err := c.placeLab(ctx, v, specOf(v, nil)) // placement needs no files
		if err != nil {
			return nil, err
		}
		if err := c.start(ctx, v, dep); err != nil {
			return nil, err
		}
		return c.prepareLocked(ctx, dep.hosts, nil)
	})
	if err != nil {
		return wire.DeployResponse{}, err
	}
	if _, err := c.run(ctx, r); err != nil {
		return wire.DeployResponse{}, err
	}
	return c.result(ctx, labName)
}

// changeLocked runs fn, which changes the desired state and prepares the
// round that declares the change, under stateMu.
func (c *Controller) changeLocked(fn func() (*round, error)) (*round, error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return fn()
}

// destroy takes a lab out of the desired state (stopping: nothing of it is
// declared) and declares to the hosts that hold it. The lab is stopped
// once every one of them confirmed; a host that is down gets its
// declaration when it registers again, and the lab stays stopping, saying
// which hosts it waits for.
func (c *Controller) destroy(ctx context.Context, labName string) (wire.DeployResponse, error) {
	r, err := c.changeLocked(func() (*round, error) {
		v, err := c.store.LabView(ctx, labName)
		if err != nil {
			return nil, err
		}
		if err := c.store.SetLabState(ctx, v.ID, store.LabStopping, ""); err != nil {
			return nil, err
		}
		hosts := map[string]bool{}
		for _, n := range v.Nodes {
			if n.PlacedOn != "" {
				hosts[n.PlacedOn] = true
			}
		}
		return c.prepareLocked(ctx, hosts, nil)
	})
	if err != nil {
		return wire.DeployResponse{}, err
	}
	if _, err := c.run(ctx, r); err != nil {
		return wire.DeployResponse{}, err
	}
	return c.result(ctx, labName)
}

// result is a lab's state as a deploy or destroy answers it.
func (c *Controller) result(ctx context.Context, labName string) (wire.DeployResponse, error) {
	v, err := c.store.LabView(ctx, labName)
	if err != nil {
		return wire.DeployResponse{}, err
	}
	return v.Result(), nil
}
