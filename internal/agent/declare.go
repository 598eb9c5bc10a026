package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// MaxFirstGeneration bounds the first generation an agent takes, when it
// has taken none (or only 0) yet: a controller that has run for years may
// be far along, but not past what a float64 counts exactly.
const MaxFirstGeneration int64 = 1 << 53

// DefaultMaxGenerationJump is how far ahead of the last taken generation a
// declaration may be, by default.
const DefaultMaxGenerationJump int64 = 1 << 32

// generations says which generations an agent takes: a declaration older
// than the last taken is stale, one too far ahead of it implausible (one
// such, persisted in the cache, would fence every real controller out for
// good), and one without a generation bypasses fencing, so it is taken only
// in the compatibility mode for the original controller.
type generations struct {
	maxJump        int64
	acceptUnfenced bool
}

// fence refuses a declaration that gens does not take and returns the
// generation it applies. The caller holds c.mu.
func (c *converger) fence(g *int64) (int64, error) {
	switch {
	case g == nil && c.gens.acceptUnfenced:
		c.log.Warn("unfenced declaration taken", "generation", c.generation)
		return c.generation, nil
	case g == nil:
		c.m.stale.Inc()
		return 0, fmt.Errorf("%w: the declaration has no generation, which this agent takes only with --accept-unfenced", ErrGenerationRefused)
	case *g < c.generation:
		c.m.stale.Inc()
		return 0, fmt.Errorf("%w: %d is older than %d, the last applied", ErrStaleGeneration, *g, c.generation)
	case c.generation == 0 && *g > MaxFirstGeneration:
		c.m.stale.Inc()
		return 0, fmt.Errorf("%w: %d is more than %d, the most an agent takes first", ErrGenerationRefused, *g, MaxFirstGeneration)
	case c.generation > 0 && *g-c.generation > c.gens.maxJump:
		c.m.stale.Inc()
		return 0, fmt.Errorf("%w: %d is more than %d ahead of %d, the last applied (--max-generation-jump)",
			ErrGenerationRefused, *g, c.gens.maxJump, c.generation)
	}
	return *g, nil
}

// skipped is what a declaration answers when the host could not be read:
// unknown is not empty, so nothing changed and nothing was removed (W-18),
// and the generation applied is still the last one.
func (c *converger) skipped(gen int64, err error) (*string, *int64) {
	c.log.Warn("declaration skipped: host unreadable", "generation", gen, "err", err)
	skipped, applied := wire.SkippedOVSReadError, c.generation
	return &skipped, &applied
}

// scoped returns what the agent holds for labs outside scope, which a
// declaration for scope leaves as it is (W-11).
func (c *converger) scoped(scope map[string]bool) hostState {
	next := newHostState()
	for k, n := range c.held.nodes {
		if !scope[k.Lab] {
			next.nodes[k] = n
		}
	}
	for name, t := range c.held.tunnels {
		if !scope[t.LabID] {
			next.tunnels[name] = t
		}
	}
	return next
}

// undeclared returns the labs the start-up restore took from the cache
// that a declaration with a generation leaves out of its scope: the
// controller names every lab it knows, so one it does not is gone, and what
// the agent restored of it goes too. Only the first such declaration after a
// restore drops them (see forgetRestored). The caller holds c.mu.
func (c *converger) undeclared(scope map[string]bool, g *int64) map[string]bool {
	gone := map[string]bool{}
	if g == nil {
		return gone
	}
	for lab := range c.restored {
		if !scope[lab] {
			gone[lab] = true
			c.log.Info("restored lab not declared: removing it", "lab", lab)
		}
	}
	return gone
}

// forgetRestored ends the restore's scoping once a declaration with a
// generation converged. The caller holds c.mu.
func (c *converger) forgetRestored(g *int64) {
	if g != nil {
		c.restored = nil
	}
}

// declaredTunnels adds a declaration's tunnels to next: a placeholder keeps
// what the agent holds under its name, if anything (a link in progress).
func (c *converger) declaredTunnels(next hostState, tunnels []wire.DeclaredTunnel) {
	for _, t := range tunnels {
		if !t.Protected() {
			next.tunnels[t.PortName] = t
		} else if old, ok := c.held.tunnels[t.PortName]; ok {
			next.tunnels[t.PortName] = old
		}
	}
}

// others lists next's objects outside scope, sorted, to plan after a
// declaration's own.
func others(next hostState, scope map[string]bool) planInput {
	var in planInput
	for _, n := range next.nodeList() {
		if !scope[n.LabID] {
			in.nodes = append(in.nodes, n)
		}
	}
	for _, t := range next.tunnelList() {
		if !scope[t.LabID] {
			in.tunnels = append(in.tunnels, t)
		}
	}
	return in
}

// declareHost converges the host to a host declaration (DESIGN §11): the
// labs in its scope get exactly its nodes and tunnels, others keep theirs.
func (c *converger) declareHost(ctx context.Context, req wire.HostDeclaration) (wire.HostDeclarationResponse, error) {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.declarations.Inc()
	gen, err := c.fence(req.Generation)
	if err != nil {
		return wire.HostDeclarationResponse{}, err
	}
	if req, err = c.whole(req); err != nil {
		return wire.HostDeclarationResponse{}, err
	}
	scope := req.Scope()
	wide := maps.Clone(scope)
	maps.Copy(wide, c.undeclared(scope, req.Generation))
	next := c.scoped(wide)
	for _, n := range req.Nodes {
		next.nodes[keyOf(n)] = n
	}
	c.declaredTunnels(next, req.Tunnels)
	rest := others(next, wide)
	in := planInput{nodes: append(append([]wire.DeclaredNode{}, req.Nodes...), rest.nodes...),
		tunnels: append(append([]wire.DeclaredTunnel{}, req.Tunnels...), rest.tunnels...)}
	resp := wire.HostDeclarationResponse{Nodes: []wire.NodeStatus{}, Interfaces: []wire.InterfaceStatus{}, Tunnels: []wire.TunnelResult{}}
	hp, err := c.converge(ctx, in, next, pruneLabs(wide), gen, true)
	if errors.Is(err, errUnreadable) {
		resp.Skipped, resp.ObservedGeneration = c.skipped(gen, err)
		return resp, nil
	}
	if err != nil {
		return resp, err
	}
	c.forgetRestored(req.Generation)
	resp.ObservedGeneration, resp.CacheError = &gen, c.cacheError()
	for _, r := range hp.nodes {
		if scope[r.LabID] {
			resp.Nodes = append(resp.Nodes, r)
		}
	}
	for _, r := range hp.ifaces {
		if scope[r.LabID] {
			resp.Interfaces = append(resp.Interfaces, r)
		}
	}
	for _, r := range hp.tunnels {
		if scope[r.LabID] {
			resp.Tunnels = append(resp.Tunnels, r)
			c.m.results.WithLabelValues(r.Status).Inc()
		}
	}
	c.m.duration.Observe(time.Since(start).Seconds())
	c.log.Info("host declaration converged", "generation", gen, "nodes", len(req.Nodes), "tunnels", len(req.Tunnels),
		"made", len(hp.work), "removed", len(hp.deleteNodes), "failed", len(hp.failures()), "dur", time.Since(start))
	if req.Digest == "" { // a controller without conditional rounds: no digest to hash for
		return resp, nil
	}
	resp = conditional(resp, req.AnswerDigest)
	if resp.SameAnswer {
		c.m.conditional.WithLabelValues("same_answer").Inc()
	}
	return resp, nil
}

// whole returns the whole declaration a request stands for: itself, or
// the one its same_as names, under its generation, when the agent holds
// that one. A whole declaration with a digest is held from now on (one
// without replaces it: nothing is held). The caller holds c.mu.
func (c *converger) whole(req wire.HostDeclaration) (wire.HostDeclaration, error) {
	if req.SameAs == "" {
		c.last = nil
		if req.Digest != "" {
			last := req
			last.Generation, last.AnswerDigest = nil, ""
			c.last = &last
		}
		return req, nil
	}
	if c.last == nil || c.last.Digest != req.SameAs {
		c.m.conditional.WithLabelValues("not_held").Inc()
		return req, fmt.Errorf("%w: declaration %s: send it whole", ErrNotHeld, req.SameAs)
	}
	c.m.conditional.WithLabelValues("held").Inc()
	same := *c.last
	same.Generation, same.AnswerDigest = req.Generation, req.AnswerDigest
	return same, nil
}

// conditional returns an answer as sent: only its generation when it is
// the answer whose digest the declaration carried, else whole with its
// digest. (An answer that could not read the host is not conditional: it
// says nothing of the host.)
func conditional(resp wire.HostDeclarationResponse, known string) wire.HostDeclarationResponse {
	sum := resp.Sum()
	if sum == known {
		return wire.HostDeclarationResponse{ObservedGeneration: resp.ObservedGeneration, SameAnswer: true}
	}
	resp.AnswerDigest = sum
	return resp
}

// declare converges the host to the original's tunnel declaration (DESIGN
// §6): the labs in scope get exactly the declared tunnels; nodes and other
// labs' tunnels are kept, and only tunnel ports are removed as orphans.
func (c *converger) declare(ctx context.Context, req wire.DeclareStateRequest) (wire.DeclareStateResponse, error) {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.declarations.Inc()
	gen, err := c.fence(req.Generation)
	if err != nil {
		return wire.DeclareStateResponse{}, err
	}
	scope := map[string]bool{}
	for _, lab := range req.DeclaredLabs {
		scope[lab] = true
	}
	for _, t := range req.Tunnels {
		scope[t.LabID] = true
	}
	gone := c.undeclared(scope, req.Generation)
	maps.Copy(scope, gone)
	next := newHostState()
	next.nodes = c.held.clone().nodes
	for lab := range gone {
		next.dropLab(lab) // its nodes too: the lab is gone
	}
	for name, t := range c.held.tunnels {
		if !scope[t.LabID] {
			next.tunnels[name] = t
		}
	}
	c.declaredTunnels(next, req.Tunnels)
	in := planInput{nodes: next.nodeList(), tunnels: append([]wire.DeclaredTunnel{}, req.Tunnels...)}
	for _, t := range next.tunnelList() {
		if !scope[t.LabID] {
			in.tunnels = append(in.tunnels, t)
		}
	}
	pr := prune{tunnels: func(lab, _ string) bool { return scope[lab] }}
	resp := wire.DeclareStateResponse{Results: []wire.TunnelResult{}, OrphansRemoved: []string{}}
	hp, err := c.converge(ctx, in, next, pr, gen, true)
	if errors.Is(err, errUnreadable) {
		resp.Skipped, resp.ObservedGeneration = c.skipped(gen, err)
		return resp, nil
	}
	if err != nil {
		return resp, err
	}
	c.forgetRestored(req.Generation)
	resp.ObservedGeneration, resp.CacheError = &gen, c.cacheError()
	resp.Results = append(resp.Results, hp.tunnels[:len(req.Tunnels)]...)
	for _, r := range resp.Results {
		c.m.results.WithLabelValues(r.Status).Inc()
	}
	for _, i := range hp.removedTunnels {
		if r := hp.tunnels[i]; r.Status == wire.StatusRemoved {
			resp.OrphansRemoved = append(resp.OrphansRemoved, r.PortName)
		}
	}
	c.m.orphans.Add(float64(len(resp.OrphansRemoved)))
	c.m.duration.Observe(time.Since(start).Seconds())
	c.log.Info("declaration converged", "generation", gen, "tunnels", len(req.Tunnels),
		"changed", len(hp.changedTunnels), "orphans", len(resp.OrphansRemoved), "dur", time.Since(start))
	return resp, nil
}
