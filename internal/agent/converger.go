package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/agent/vlan"
	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// converger keeps the host's bridge matching what the agent holds: the
// declared tunnels and the node ports. One lock serialises every mutation of
// the bridge (W-5).
type converger struct {
	driver   fabric.Driver
	runtime  runtime.Runtime
	stateDir string
	mtu      int // for tunnels that declare none
	log      *slog.Logger
	m        *metrics

	mu sync.Mutex
	// mu guards the following, and every Apply.
	tunnels    map[string]wire.DeclaredTunnel // by port name, never by link name (W-1)
	ports      map[string]nodePort            // node ports by host port name
	generation int64                          // the last applied declaration's
	tags       *vlan.Allocator
	cached     []wire.DeclaredTunnel // what the cache file holds, once written
	cachedGen  int64
}

func newConverger(d fabric.Driver, rt runtime.Runtime, stateDir string, mtu int, log *slog.Logger, m *metrics) *converger {
	return &converger{
		driver: d, runtime: rt, stateDir: stateDir, mtu: mtu, log: log, m: m,
		tunnels: map[string]wire.DeclaredTunnel{}, ports: map[string]nodePort{}, tags: vlan.New(nil),
	}
}

// declare converges the bridge to a declaration (DESIGN §6).
func (c *converger) declare(ctx context.Context, req wire.DeclareStateRequest) (wire.DeclareStateResponse, error) {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.declarations.Inc()
	if req.Generation != nil && *req.Generation < c.generation {
		c.m.stale.Inc()
		return wire.DeclareStateResponse{}, fmt.Errorf("%w: %d is older than %d, the last applied", ErrStaleGeneration, *req.Generation, c.generation)
	}
	gen := c.generation
	if req.Generation != nil {
		gen = *req.Generation
	}
	resp := wire.DeclareStateResponse{Results: []wire.TunnelResult{}, OrphansRemoved: []string{}, ObservedGeneration: &gen}
	obsStart := time.Now()
	obs, err := c.driver.Observe(ctx)
	observed := time.Since(obsStart)
	if err != nil {
		// Unknown is not empty: change nothing, remove nothing, keep the cache (W-18).
		c.m.skipped.Inc()
		c.log.Warn("declaration skipped: bridge unreadable", "generation", gen, "err", err)
		skipped := wire.SkippedOVSReadError
		resp.Skipped = &skipped
		resp.ObservedGeneration = &c.generation
		return resp, nil
	}
	scope := map[string]bool{}
	for _, lab := range req.DeclaredLabs {
		scope[lab] = true
	}
	for _, t := range req.Tunnels {
		scope[t.LabID] = true
	}
	// The labs in scope get exactly the declared tunnels; others keep theirs (W-11).
	next := map[string]wire.DeclaredTunnel{}
	for name, t := range c.tunnels {
		if !scope[t.LabID] {
			next[name] = t
		}
	}
	for _, t := range req.Tunnels {
		if !t.Protected() {
			next[t.PortName] = t
		} else if old, ok := c.tunnels[t.PortName]; ok {
			next[t.PortName] = old // a link in progress keeps what attach made
		}
	}
	// The cache goes first: a crash during Apply restarts into this state.
	cacheStart := time.Now()
	c.writeCache(next, gen)
	cached := time.Since(cacheStart)
	tp := planTunnels(req.Tunnels, scope, obs, c.mtu, true)
	c.apply(ctx, &tp)
	c.tunnels, c.generation = next, gen
	c.syncTags(obs)

	resp.Results = tp.results
	if tp.orphans != nil {
		resp.OrphansRemoved = tp.orphans
	}
	for _, r := range tp.results {
		c.m.results.WithLabelValues(r.Status).Inc()
	}
	c.m.orphans.Add(float64(len(tp.orphans)))
	c.m.duration.Observe(time.Since(start).Seconds())
	c.log.Info("declaration converged", "generation", gen, "tunnels", len(req.Tunnels),
		"changed", len(tp.changed), "orphans", len(tp.orphans), "dur", time.Since(start), "observe", observed, "cache", cached)
	return resp, nil
}

// apply carries out a tunnel plan and turns failures into error results.
func (c *converger) apply(ctx context.Context, tp *tunnelPlan) {
	if tp.plan.Empty() {
		return
	}
	err := c.driver.Apply(ctx, tp.plan)
	if err == nil {
		return
	}
	c.log.Error("apply failed", "err", err)
	var pe *fabric.PartialError
	partial := errors.As(err, &pe)
	for i, r := range tp.results {
		if !tp.changed[r.PortName] {
			continue
		}
		msg := err.Error()
		if partial {
			ferr, failed := pe.Failed[r.PortName]
			if !failed {
				continue
			}
			msg = ferr.Error()
		}
		tp.results[i].Status = wire.StatusError
		tp.results[i].Error = &msg
		tp.results[i].ActualVLAN = nil
	}
	if !partial {
		tp.orphans = nil // the transaction that removes them did not happen
	}
}

// repair converges the bridge to what the agent holds, without a
// declaration and without removing orphans: after drift, on the health
// pass and at start-up.
func (c *converger) repair(ctx context.Context, cause string) error {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		c.m.skipped.Inc()
		return fmt.Errorf("repair: %w", err)
	}
	tp := planTunnels(c.tunnelList(), nil, obs, c.mtu, false)
	planNodePorts(&tp.plan, c.ports, obs)
	c.syncTags(obs)
	if tp.plan.Empty() {
		return nil
	}
	c.apply(ctx, &tp)
	c.m.repairs.WithLabelValues(cause).Inc()
	c.m.duration.Observe(time.Since(start).Seconds())
	var failed []string
	for _, r := range tp.results {
		if r.Status == wire.StatusError {
			failed = append(failed, r.PortName+": "+*r.Error)
		}
	}
	c.log.Info("repaired", "cause", cause, "tunnels", len(tp.changed), "dur", time.Since(start))
	if len(failed) > 0 {
		return fmt.Errorf("repair: %d tunnels failed: %v", len(failed), failed)
	}
	return nil
}

// restore loads the cache and converges to it at start-up, before the agent
// talks to the controller: nothing is flushed, nothing removed, and matching
// devices are adopted with their ifindex. Node ports are taken from the
// bridge's marks. A corrupt cache is logged and ignored.
func (c *converger) restore(ctx context.Context) error {
	cf, err := readCache(c.stateDir)
	if err != nil {
		c.log.Error("ignoring the declared-state cache", "err", err)
		cf = cacheFile{}
	}
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	c.mu.Lock()
	for _, t := range cf.Tunnels {
		c.tunnels[t.PortName] = t
	}
	c.generation = max(c.generation, cf.Generation)
	for name, p := range obs.Ports {
		if p.Owned() && p.Owner.Node != "" && p.Tag > 0 {
			c.ports[name] = nodePort{Lab: p.Owner.Lab, Node: p.Owner.Node, Iface: p.Owner.Iface, Tag: p.Tag, MTU: p.MTU}
		}
	}
	c.mu.Unlock()
	c.log.Info("restoring from cache", "tunnels", len(cf.Tunnels), "generation", cf.Generation, "declared_at", cf.DeclaredAt)
	return c.repair(ctx, "restore")
}

func (c *converger) tunnelList() []wire.DeclaredTunnel {
	out := make([]wire.DeclaredTunnel, 0, len(c.tunnels))
	for _, name := range slices.Sorted(maps.Keys(c.tunnels)) {
		out = append(out, c.tunnels[name])
	}
	return out
}

// writeCache persists the tunnels; a failure is logged, not fatal: the
// bridge is what matters now, the cache only after a restart.
func (c *converger) writeCache(tunnels map[string]wire.DeclaredTunnel, gen int64) {
	list := make([]wire.DeclaredTunnel, 0, len(tunnels))
	for _, name := range slices.Sorted(maps.Keys(tunnels)) {
		list = append(list, tunnels[name])
	}
	// The same state again is not written again: an fsync per repeated
	// declaration is most of a no-op declaration's time.
	if c.cached != nil && gen == c.cachedGen && slices.Equal(list, c.cached) {
		return
	}
	if err := writeCache(c.stateDir, cacheFile{DeclaredAt: time.Now().UTC(), Generation: gen, Tunnels: list}); err != nil {
		c.log.Error("cache not written", "err", err)
		return
	}
	c.cached, c.cachedGen = list, gen
}

// syncTags tells the allocator every tag in use: held by the agent or seen
// on the bridge.
func (c *converger) syncTags(obs fabric.Observed) {
	var inUse []int
	for _, t := range c.tunnels {
		inUse = append(inUse, t.ExpectedVLAN)
	}
	for _, p := range c.ports {
		inUse = append(inUse, p.Tag)
	}
	for _, p := range obs.Ports {
		inUse = append(inUse, p.Tag)
	}
	c.tags.Sync(inUse)
}

// isRelevant reports whether an event's name is something the agent keeps.
func (c *converger) isRelevant(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, t := c.tunnels[name]
	_, p := c.ports[name]
	return t || p
}
