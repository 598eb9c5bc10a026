package controller

import (
	"context"
	"time"
)

// reconcileLoop runs a full round at once, for labs a restart left
// starting, then a cycle every interval until ctx ends.
func (c *Controller) reconcileLoop(ctx context.Context) {
	// A term starts from the database: while another controller led, it
	// recorded what this one's copy does not hold.
	c.stateMu.Lock()
	c.held = nil
	c.stateMu.Unlock()
	if _, err := c.converge(ctx, nil, nil); err != nil {
		c.log.Error("convergence at start failed", "err", err)
	}
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

// cycle is one pass of the reconcile loop: duplicate detection, cleanup of
// orphaned rows, then every ConvergeEvery-th cycle a round that declares
// every online host's full state, which rebuilds what a host lost and
// refreshes what users see. No store transaction spans an agent call, and
// the statements it sends do not grow with the number of links.
func (c *Controller) cycle(ctx context.Context, n int) {
	log := c.log.With("cycle", n)
	if vnis, err := c.store.DuplicateVNIs(ctx); err != nil {
		log.Error("duplicate detection failed", "err", err)
	} else if len(vnis) > 0 {
		log.Error("tunnels share a VNI: fix the rows by hand", "vnis", vnis)
	}
	if tunnels, links, err := c.store.CleanupOrphans(ctx); err != nil {
		log.Error("link cleanup failed", "err", err)
	} else if tunnels+links > 0 {
		log.Info("orphans cleaned up", "tunnels", tunnels, "links", links)
	}
	if n%c.cfg.ConvergeEvery != 0 {
		return
	}
	if _, err := c.converge(ctx, nil, nil); err != nil {
		log.Error("convergence failed", "err", err)
	}
}
