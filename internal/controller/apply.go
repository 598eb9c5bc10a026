package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

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
		case o.Kind != n.Kind || o.Image != n.Image || o.Host != n.Host || !slices.Equal(o.Exec, n.Exec) ||
			!reflect.DeepEqual(o.NodeSettings, n.NodeSettings) || len(changedFiles(o, old.Files, n, next.Files)) > 0 ||
			o.MgmtIPv4 != n.MgmtIPv4 || o.NetworkMode != n.NetworkMode:
			c.ChangeNodes = append(c.ChangeNodes, n)
		}
	}
	c.Files = next.Files
	if old.Mgmt.Subnet != next.Mgmt.Subnet {
		c.MgmtSubnet = &next.Mgmt.Subnet
	}
	for _, n := range old.Nodes {
		if !newNodes[n.Name] {
			c.RemoveNodes = append(c.RemoveNodes, n.Name)
		}
	}
	oldLinks := map[string]topology.Link{}
	for _, l := range old.Links {
		oldLinks[l.Name()] = l
	}
	newLinks := map[string]bool{}
	for _, l := range next.Links {
		newLinks[l.Name()] = true
		o, ok := oldLinks[l.Name()]
		switch {
		case !ok:
			c.AddLinks = append(c.AddLinks, l)
		case !sameLink(o, l): // its MTU or a MAC changed: made again
			c.RemoveLinks = append(c.RemoveLinks, l.Name())
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

// sameLink reports whether two versions of a link (same name) have the same
// settings. Endpoints are compared by name, since a link's name orders them.
func sameLink(a, b topology.Link) bool {
	macs := func(l topology.Link) map[string]string {
		return map[string]string{l.A.String(): l.A.MAC, l.B.String(): l.B.MAC}
	}
	return a.MTU == b.MTU && a.AllowFragmentation == b.AllowFragmentation && maps.Equal(macs(a), macs(b))
}

// changedFiles lists the files of a node's container that differ between
// two versions of it: what it binds (a kind's files among them).
func changedFiles(o topology.Node, oldFiles map[string][]byte, n topology.Node, newFiles map[string][]byte) []string {
	_, before, _ := o.Resolve(oldFiles)
	_, after, _ := n.Resolve(newFiles)
	data := map[string][]byte{}
	for _, f := range before {
		data[f.Path] = f.Data
	}
	var changed []string
	for _, f := range after {
		if d, ok := data[f.Path]; !ok || !bytes.Equal(d, f.Data) {
			changed = append(changed, f.Path)
		}
		delete(data, f.Path)
	}
	return append(changed, slices.Sorted(maps.Keys(data))...)
}

// specOf rebuilds the lab file a stored lab came from, with the files
// shipped with it.
func specOf(v store.LabView, files map[string][]byte) topology.Lab {
	spec := topology.Lab{Name: v.Name, Files: files, Mgmt: topology.Mgmt{Subnet: v.MgmtSubnet}}
	for _, n := range v.Nodes {
		spec.Nodes = append(spec.Nodes, topology.Node{Name: n.Name, Kind: n.Kind, Image: n.Image, Host: n.Host, Exec: n.Exec, NodeSettings: n.NodeSettings,
			MgmtIPv4: n.MgmtIPv4, NetworkMode: n.NetworkMode})
	}
	for _, ls := range v.Links {
		spec.Links = append(spec.Links, topology.Link{A: topology.Endpoint{Node: ls.SourceNode, Iface: ls.SourceIface, MAC: ls.SourceMAC},
			B: topology.Endpoint{Node: ls.TargetNode, Iface: ls.TargetIface, MAC: ls.TargetMAC}, MTU: ls.RequestedMTU, AllowFragmentation: ls.AllowFragmentation})
	}
	return spec
}

// planOf says what a change does and where the new lab's nodes and links
// will be; dep is empty when the lab cannot be placed now.
func planOf(c store.LabChange, lab topology.Lab, dep deployment, remake map[string]string) wire.LabPlan {
	p := wire.LabPlan{AddNodes: []string{}, RemoveNodes: []string{}, ChangeNodes: []string{}, AddLinks: []string{}, RemoveLinks: []string{},
		Nodes: []wire.PlannedNode{}, Links: []wire.PlannedLink{}, RemakeNodes: []wire.PlannedRemake{}}
	for _, name := range slices.Sorted(maps.Keys(remake)) {
		p.RemakeNodes = append(p.RemakeNodes, wire.PlannedRemake{Name: name, Reason: remake[name]})
	}
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
	for _, n := range lab.Nodes {
		p.Nodes = append(p.Nodes, wire.PlannedNode{Name: n.Name, Host: dep.placement[n.Name], From: dep.moves[n.Name]})
	}
	for _, l := range lab.Links {
		a, b := linkHosts(l, dep.placement)
		pl := wire.PlannedLink{Name: l.Name(), Kind: wire.KindSameHost, Hosts: []string{a}}
		if a != b {
			pl.Kind, pl.Hosts = wire.KindTunnel, []string{a, b}
		}
		p.Links = append(p.Links, pl)
	}
	return p
}

// rollout is what a deploy of an applied lab runs after its request: its
// first round, prepared with the change, and the hosts of a second one when
// the first left out the nodes it remakes.
type rollout struct {
	first *round
	again map[string]bool
}

// apply makes a lab what its file says: the change is stored, new nodes
// placed (placed ones stay, but for a pin to another host), the lab marked
// starting; it returns the plan and the rounds that declare the change,
// which run after, in the controller. Nodes that remakes names are left
// out of one declaration, then declared. With planOnly it only says what
// it would do.
func (c *Controller) apply(ctx context.Context, lab topology.Lab, planOnly bool) (wire.ApplyResponse, rollout, error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	resp := wire.ApplyResponse{Lab: lab.Name, Warnings: lab.Warnings()}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	v, err := c.store.LabView(ctx, lab.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return resp, rollout{}, err
	}
	others, lerr := c.store.Labs(ctx)
	if lerr != nil {
		return resp, rollout{}, lerr
	}
	if lab.Mgmt.Subnet, lerr = mgmtSubnet(lab, v.MgmtSubnet, others); lerr != nil {
		return resp, rollout{}, lerr
	}
	var change store.LabChange
	var was topology.Lab
	switch {
	case errors.Is(err, store.ErrNotFound):
		resp.Created = true
		change = diff(topology.Lab{}, lab)
	default:
		files, err := c.store.LabFiles(ctx)
		if err != nil {
			return resp, rollout{}, err
		}
		was = specOf(v, files[v.ID])
		change = diff(was, lab)
	}
	dep, placeErr := c.placeLab(ctx, v, lab)
	remake := remakes(was, change, dep)
	resp.Plan = planOf(change, lab, dep, remake)
	if planOnly {
		return resp, rollout{}, placeErr // a lab that cannot be placed is a plan-time error
	}
	// The request may go; what is stored is stored whole.
	ctx = context.WithoutCancel(ctx)
	if resp.Created {
		if _, err := c.store.CreateLab(ctx, lab); err != nil {
			return resp, rollout{}, err
		}
		if v, err = c.store.LabView(ctx, lab.Name); err != nil {
			return resp, rollout{}, err
		}
	} else if !change.Empty() {
		if err := c.store.UpdateLab(ctx, v.ID, change); err != nil {
			return resp, rollout{}, err
		}
	}
	if placeErr != nil {
		return resp, rollout{}, placeErr
	}
	if err := c.start(ctx, v, dep); err != nil {
		// The change is stored, its placements not: not running over it.
		c.markError(ctx, v.ID, "apply: "+err.Error())
		return resp, rollout{}, err
	}
	var ro rollout
	var omit map[nodeKey]bool
	if len(remake) > 0 {
		ro.again, omit = dep.hosts, map[nodeKey]bool{}
		for node := range remake {
			omit[nodeKey{v.ID, node}] = true
		}
	}
	if ro.first, err = c.prepareLocked(ctx, dep.hosts, omit); err != nil {
		return resp, rollout{}, err
	}
	return resp, ro, nil
}

// remakes says which nodes an apply removes and makes again, and why: what
// their runtime was given (kind, image, exec) changed, so that the new
// settings take and exec runs again; or they move to another host, where
// they are made only once their old host no longer holds them.
func remakes(was topology.Lab, change store.LabChange, dep deployment) map[string]string {
	old := map[string]topology.Node{}
	for _, n := range was.Nodes {
		old[n.Name] = n
	}
	why := map[string]string{}
	for _, n := range change.ChangeNodes {
		o := old[n.Name]
		var r []string
		if o.Kind != n.Kind {
			r = append(r, fmt.Sprintf("kind %s → %s", o.Kind, n.Kind))
		}
		if o.Image != n.Image {
			r = append(r, fmt.Sprintf("image %q → %q", o.Image, n.Image))
		}
		if !slices.Equal(o.Exec, n.Exec) {
			r = append(r, "exec changed")
		}
		if !reflect.DeepEqual(o.NodeSettings, n.NodeSettings) {
			r = append(r, "settings changed")
		}
		if f := changedFiles(o, was.Files, n, change.Files); len(f) > 0 && o.Kind == n.Kind { // a new kind brings its own files
			r = append(r, "files changed: "+strings.Join(f, ", "))
		}
		if len(r) > 0 {
			why[n.Name] = strings.Join(r, ", ")
		}
	}
	for node, from := range dep.moves {
		move := fmt.Sprintf("moves %s → %s", from, dep.placement[node])
		if why[node] != "" {
			move = why[node] + ", " + move
		}
		why[node] = move
	}
	return why
}

// deployLater runs a deploy's rounds in the controller, detached from the
// request that asked for it: a client that goes does not stop it.
func (c *Controller) deployLater(ctx context.Context, lab string, ro rollout) {
	ctx = context.WithoutCancel(ctx)
	c.bg.Go(func() {
		_, err := c.run(ctx, ro.first)
		if ro.again != nil {
			if err != nil {
				c.log.Warn("deploy: changed nodes not removed", "lab", lab, "err", err)
			}
			_, err = c.converge(ctx, ro.again, nil)
		}
		if err != nil {
			c.log.Error("deploy failed", "lab", lab, "err", err)
			c.markError(ctx, lab, "deploy: "+err.Error())
		}
	})
}

// markError marks a lab error with why, after a change failed midway: the
// reconcile loop repairs a lab in error, and its state says so meanwhile.
func (c *Controller) markError(ctx context.Context, lab, why string) {
	if err := c.store.SetLabState(ctx, lab, store.LabError, why); err != nil {
		c.log.Error("lab state not recorded", "lab", lab, "state", store.LabError, "why", why, "err", err)
	}
}
