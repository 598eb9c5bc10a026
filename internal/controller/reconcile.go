package controller

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// reconcileLoop runs a cycle every interval until ctx ends.
func (c *Controller) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.ReconcileInterval)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.cycle(ctx, n)
	}
}

// RunCycle runs one pass of the reconcile loop now, as its n-th cycle: for
// benchmarks that time it.
func (c *Controller) RunCycle(ctx context.Context, n int) { c.cycle(ctx, n) }

// cycle is one pass of the reconcile loop, in the order of the reference
// (§6.6): duplicate detection, link repair, link cleanup, then every
// ConvergeEvery-th cycle overlay convergence, mapping refresh, cross-host
// port convergence and same-host convergence. No store transaction spans
// an agent call, and the statements it sends do not grow with the number
// of links.
func (c *Controller) cycle(ctx context.Context, n int) {
	log := c.log.With("cycle", n)
	if vnis, err := c.store.DuplicateVNIs(ctx); err != nil {
		log.Error("duplicate detection failed", "err", err)
	} else if len(vnis) > 0 {
		log.Error("tunnels share a VNI: fix the rows by hand", "vnis", vnis)
	}
	c.repairLabs(ctx, log)
	if tunnels, links, err := c.store.CleanupOrphans(ctx); err != nil {
		log.Error("link cleanup failed", "err", err)
	} else if tunnels+links > 0 {
		log.Info("orphans cleaned up", "tunnels", tunnels, "links", links)
	}
	if n%c.cfg.ConvergeEvery != 0 {
		return
	}
	if _, err := c.convergeAll(ctx, nil); err != nil {
		log.Error("convergence failed", "err", err)
	}
}

// convergeAll runs overlay convergence, then port convergence, for the
// online agents (those in only, when set), on one read of the store.
func (c *Controller) convergeAll(ctx context.Context, only map[string]bool) (wire.ConvergeResponse, error) {
	c.convMu.Lock()
	defer c.convMu.Unlock()
	st, err := c.readConvState(ctx)
	if err != nil {
		return wire.ConvergeResponse{}, err
	}
	resp, err := c.declareAll(ctx, only, st)
	if err != nil {
		return resp, err
	}
	return resp, c.convergePorts(ctx, only, st)
}

// repairLabs deploys again every lab left in error whose hosts are all
// online: deploy is idempotent and redoes only what is missing.
func (c *Controller) repairLabs(ctx context.Context, log *slog.Logger) {
	labs, err := c.store.Labs(ctx)
	if err != nil {
		log.Warn("link repair skipped", "err", err)
		return
	}
	for _, l := range labs {
		if l.State != store.LabError {
			continue
		}
		resp, err := c.deploy(ctx, l.Name)
		if err != nil {
			log.Warn("link repair failed", "lab", l.Name, "err", err)
			continue
		}
		log.Info("lab repaired", "lab", l.Name, "state", resp.State)
	}
}

// convergePorts refreshes the interface mappings from every online agent,
// then puts node ports back on the tags the database holds: cross-host
// sides one by one, same-host pairs through ports/declare-state. A mapping
// not verified recently is not trusted (W-15), and a link whose mappings
// are missing is left alone: nothing allocates a new tag here (W-17).
func (c *Controller) convergePorts(ctx context.Context, only map[string]bool, st convState) error {
	hosts, placed, links := st.hosts, st.placed, st.links
	dbMaps, err := c.store.AllMappings(ctx)
	if err != nil {
		return err
	}
	online := map[string]store.Host{}
	for _, h := range hosts {
		if c.online(h) && (only == nil || only[h.Name]) {
			online[h.Name] = h
		}
	}
	fresh := c.refreshMappings(ctx, online, placed, dbMaps)
	trusted := func(lab, node, iface string) (store.Mapping, bool) {
		m, ok := fresh[lab][node+":"+iface]
		return m, ok && m.LastVerifiedAt != nil && time.Since(*m.LastVerifiedAt) < c.mappingMaxAge()
	}
	pairings := map[string][]wire.PortPairing{}
	type retag struct {
		host, port string
		tag        int
	}
	var retags []retag
	for _, ls := range links {
		if ls.ActualState != store.LinkUp || ls.SourceTag == nil || ls.TargetTag == nil {
			continue
		}
		a, aok := trusted(ls.LabID, ls.SourceNode, ls.SourceIface)
		b, bok := trusted(ls.LabID, ls.TargetNode, ls.TargetIface)
		if !ls.CrossHost {
			if aok && bok && online[ls.SourceHost].Name != "" {
				pairings[ls.SourceHost] = append(pairings[ls.SourceHost], wire.PortPairing{LinkName: ls.Name, LabID: ls.LabID,
					PortA: a.OVSPort, PortB: b.OVSPort, VLANTag: *ls.SourceTag})
			}
			continue
		}
		if aok && a.Tag != *ls.SourceTag && online[ls.SourceHost].Name != "" {
			retags = append(retags, retag{ls.SourceHost, a.OVSPort, *ls.SourceTag})
		}
		if bok && b.Tag != *ls.TargetTag && online[ls.TargetHost].Name != "" {
			retags = append(retags, retag{ls.TargetHost, b.OVSPort, *ls.TargetTag})
		}
	}
	var wg sync.WaitGroup
	for host, ps := range pairings {
		wg.Go(func() {
			cctx, cancel := c.callCtx(ctx)
			defer cancel()
			resp, err := c.agent(online[host]).DeclarePorts(cctx, wire.PortDeclareRequest{Pairings: ps})
			if err != nil {
				c.log.Warn("same-host convergence failed", "host", host, "err", err)
				return
			}
			for _, r := range resp.Results {
				if r.Status == wire.StatusError {
					c.log.Warn("same-host link not converged", "host", host, "lab", r.LabID, "link", r.LinkName, "err", *r.Error)
				}
			}
		})
	}
	for _, rt := range retags {
		wg.Go(func() {
			cctx, cancel := c.callCtx(ctx)
			defer cancel()
			if _, err := c.agent(online[rt.host]).SetVLAN(cctx, rt.port, rt.tag); err != nil {
				c.log.Warn("cross-host port not retagged", "host", rt.host, "port", rt.port, "tag", rt.tag, "err", err)
				return
			}
			c.log.Info("cross-host port retagged", "host", rt.host, "port", rt.port, "tag", rt.tag)
		})
	}
	wg.Wait()
	return nil
}

// refreshMappings asks every online agent for the node ports of each lab
// placed on it, writes the mappings that changed and marks the others
// verified; it returns the lab's mappings by "node:iface". A port-state
// that fails leaves that host's mappings as they were: unknown, not gone.
func (c *Controller) refreshMappings(ctx context.Context, online map[string]store.Host, placed []store.Placed, dbMaps map[string][]store.Mapping) map[string]map[string]store.Mapping {
	fresh := map[string]map[string]store.Mapping{}
	for lab, ms := range dbMaps {
		fresh[lab] = map[string]store.Mapping{}
		for _, m := range ms {
			fresh[lab][m.Node+":"+m.Iface] = m
		}
	}
	type answer struct {
		lab   string
		ports []wire.PortState
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	for _, p := range placed {
		h, ok := online[p.Host]
		if !ok {
			continue
		}
		wg.Go(func() {
			cctx, cancel := c.callCtx(ctx)
			defer cancel()
			resp, err := c.agent(h).PortState(cctx, p.Lab)
			if err != nil {
				c.log.Warn("port state unavailable", "host", p.Host, "lab", p.Lab, "err", err)
				return
			}
			mu.Lock()
			answers = append(answers, answer{p.Lab, resp.Ports})
			mu.Unlock()
		})
	}
	wg.Wait()
	now := time.Now().UTC()
	byLabChanged := map[string][]store.Mapping{}
	byLabSeen := map[string][]string{}
	for _, a := range answers {
		if fresh[a.lab] == nil {
			fresh[a.lab] = map[string]store.Mapping{}
		}
		for _, p := range a.ports {
			key := p.NodeName + ":" + p.InterfaceName
			old, ok := fresh[a.lab][key]
			m := store.Mapping{Node: p.NodeName, Iface: p.InterfaceName, OVSPort: p.OVSPortName, Tag: p.VLANTag, LastVerifiedAt: &now}
			if !ok || old.OVSPort != m.OVSPort || old.Tag != m.Tag {
				byLabChanged[a.lab] = append(byLabChanged[a.lab], m)
			} else {
				byLabSeen[a.lab] = append(byLabSeen[a.lab], m.OVSPort)
			}
			fresh[a.lab][key] = m
		}
	}
	for _, lab := range sortedKeys(byLabChanged, byLabSeen) {
		if err := c.store.UpsertMappings(ctx, lab, byLabChanged[lab]); err != nil {
			c.log.Warn("mappings not written", "lab", lab, "err", err)
		}
		if err := c.store.TouchMappings(ctx, lab, byLabSeen[lab]); err != nil {
			c.log.Warn("mappings not marked verified", "lab", lab, "err", err)
		}
	}
	return fresh
}

// mappingMaxAge is how old a mapping may be and still be trusted.
func (c *Controller) mappingMaxAge() time.Duration {
	if c.cfg.MappingMaxAge > 0 {
		return c.cfg.MappingMaxAge
	}
	return 3 * c.cfg.ReconcileInterval * time.Duration(c.cfg.ConvergeEvery)
}

func sortedKeys[V any, W any](a map[string]V, b map[string]W) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, dup := a[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
