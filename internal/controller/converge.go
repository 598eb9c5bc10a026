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

// round is one convergence round, prepared: the desired state it read
// (allocations done), the generation it declares under, and what each
// target host gets.
type round struct {
	gen     int64
	d       *store.Desired // shared with the next rounds: changed under stateMu only
	changes uint64         // Controller.changes when d was read
	omit    map[nodeKey]bool
	targets []target
}

// target is a host of a round: its declaration, or nil when it is offline
// and not called.
type target struct {
	host store.Host
	decl *wire.HostDeclaration
}

// converge runs one convergence round for the hosts in only (every host
// when nil); nodes in omit are left out of their hosts' declarations.
func (c *Controller) converge(ctx context.Context, only map[string]bool, omit map[nodeKey]bool) (wire.ConvergeResponse, error) {
	c.stateMu.Lock()
	r, err := c.prepareLocked(ctx, only, omit)
	c.stateMu.Unlock()
	if err != nil {
		return wire.ConvergeResponse{}, err
	}
	return c.run(ctx, r)
}

// prepareLocked is the first half of a round, under stateMu: it reads the
// desired state once, allocates what is missing, and builds every target
// host's whole declaration under one fresh generation. A caller that
// changed the desired state prepares its round in the same hold of
// stateMu, so the round carries the change (W-4) and fences off the
// answers of older rounds to those hosts.
func (c *Controller) prepareLocked(ctx context.Context, only map[string]bool, omit map[nodeKey]bool) (*round, error) {
	ctx = c.asLeader(ctx)
	k, err := c.desiredLocked(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range k.links {
		c.log.Error("link not allocated", "err", p)
	}
	for _, p := range k.mgmt {
		c.log.Error("management network not allocated", "err", p)
	}
	decls := k.decls
	if omit != nil {
		decls = hostDeclarations(*k.d, omit)
	}
	gen, err := c.store.NextGeneration(ctx, c.leaderID())
	if err != nil {
		return nil, err
	}
	c.changes++
	c.views.changed()
	r := &round{gen: gen, d: k.d, changes: c.changes, omit: omit}
	for _, h := range k.d.Hosts {
		if only != nil && !only[h.Name] {
			continue
		}
		c.prepared[h.Name] = gen
		t := target{host: h}
		if c.online(h) {
			decl := *decls[h.Name] // the held one is every round's
			decl.Generation = &gen
			t.decl = &decl
		}
		r.targets = append(r.targets, t)
	}
	return r, nil
}

// run declares a prepared round to its hosts, in parallel and without
// stateMu, each in its host's line; then, under stateMu, it records what
// the agents answered: node and link states, interface mappings, lab
// states, and the teardowns the hosts confirmed. What an offline host
// holds becomes unknown.
func (c *Controller) run(ctx context.Context, r *round) (wire.ConvergeResponse, error) {
	ctx = c.asLeader(ctx)
	resp := wire.ConvergeResponse{Generation: r.gen, Agents: []wire.AgentConvergence{}}
	answers := map[string]*hostAnswer{}
	var mu sync.Mutex
	// mu guards resp.Agents and answers while the hosts answer.
	var wg sync.WaitGroup
	for _, t := range r.targets {
		if t.decl == nil {
			a := newHostAnswer(t.host.Name)
			a.unknown = t.host.Name + " offline"
			mu.Lock()
			answers[t.host.Name] = a
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			sum, a := c.declareInLine(ctx, t.host, *t.decl)
			mu.Lock()
			defer mu.Unlock()
			resp.Agents = append(resp.Agents, sum)
			if a != nil {
				answers[t.host.Name] = a
			}
		})
	}
	wg.Wait()
	slices.SortFunc(resp.Agents, func(a, b wire.AgentConvergence) int { return strings.Compare(a.Host, b.Host) })
	c.mu.Lock()
	for _, s := range resp.Agents {
		c.summaries[s.Host] = s
	}
	c.mu.Unlock()

	c.stateMu.Lock()
	err := c.recordLocked(ctx, r, answers)
	c.stateMu.Unlock()
	if err != nil {
		return resp, err
	}
	c.log.Info("converged", "generation", r.gen, "agents", len(resp.Agents))
	return resp, c.awaitSettled(ctx, r)
}

// awaitSettled waits until every host of a round has its answer to this
// round, or to a newer one, recorded: what a deploy answers is then what
// its hosts did.
func (c *Controller) awaitSettled(ctx context.Context, r *round) error {
	for {
		c.stateMu.Lock()
		settled, ch := true, c.settledCh
		for _, t := range r.targets {
			settled = settled && c.settled[t.host.Name] >= r.gen
		}
		c.stateMu.Unlock()
		if settled {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recordLocked records a round's answers, under stateMu. An answer of a
// host that a newer round was prepared for is left to that round: it may
// carry a change this one does not. When anything changed since the round
// read the desired state, the answers are recorded against the state as it
// is now, so no newer observation is overwritten with an older one.
func (c *Controller) recordLocked(ctx context.Context, r *round, answers map[string]*hostAnswer) error {
	for host := range answers {
		if c.prepared[host] > r.gen {
			delete(answers, host)
		}
	}
	defer c.views.changed()
	defer func() { // settled even when recording failed: nothing waits forever
		for host := range answers {
			c.settled[host] = r.gen
		}
		close(c.settledCh)
		c.settledCh = make(chan struct{})
	}()
	d := r.d
	if c.changes != r.changes {
		fresh, err := c.store.Desired(ctx)
		if err != nil {
			return err
		}
		d = &fresh
	}
	c.changes++
	k := c.held
	if k != nil && k.d == d && r.omit == nil && k.unchanged(answers) {
		// The answers an observation found nothing new in, on the same
		// state: they say when the hosts answered, and nothing else.
		if err := c.store.RecordObservations(ctx, time.Now(), store.Observations{Answered: answered(answers)}); err != nil {
			return err
		}
		if !slices.ContainsFunc(d.Labs, func(l store.Lab) bool { return l.State == store.LabStopping }) {
			return nil // running labs' states follow from d alone, recorded
		}
		return c.recordLabs(ctx, *d, answers, nil)
	}
	// On the held state, only the labs whose rows or hosts' answers
	// changed since it was observed can change.
	held := k != nil && k.d == d && r.omit == nil
	var labs map[string]bool
	if held {
		labs = k.stale(answers)
	}
	// observe updates d, which may be the held copy: what it recorded moves
	// the revision on, and the copy goes with any failure to record.
	o := observe(d, answers, r.omit, labs)
	if err := c.store.RecordObservations(ctx, time.Now(), o); err != nil {
		c.held = nil
		return err
	}
	if err := c.recordLabs(ctx, *d, answers, labs); err != nil {
		c.held = nil
		return err
	}
	if held {
		// Observing is idempotent: d now holds what these answers say,
		// and the labs it changed are read again, dirty, next round.
		k.observedWith(answers)
	}
	return nil
}

// declareInLine declares to a host once its line lets it. A declaration
// that a newer one replaced does not go: it answers what the newer one did,
// and no answer, which that one's round records.
func (c *Controller) declareInLine(ctx context.Context, h store.Host, decl wire.HostDeclaration) (wire.AgentConvergence, *hostAnswer) {
	s := c.lines.enter(h.Name, *decl.Generation)
	select {
	case <-s.done:
		c.log.Debug("declaration replaced by a newer one", "host", h.Name, "generation", *decl.Generation, "newer", s.sum.Generation)
		return s.sum, nil
	case <-s.turn:
	}
	sum, a, failed := c.declareTo(ctx, h, decl)
	if ctx.Err() == nil { // a round given up says nothing of the host
		c.lines.observe(h.Name, time.Now(), failed)
	}
	c.lines.leave(h.Name, s, sum)
	return sum, a
}

// recordLabs writes the states of labs that changed: running labs from
// their nodes and links (those in stale alone, every one when nil: the
// others' follow from what was recorded), and stopping labs, which stop
// once every host that held them answered a declaration without them.
func (c *Controller) recordLabs(ctx context.Context, d store.Desired, answers map[string]*hostAnswer, stale map[string]bool) error {
	var want map[string]bool // the labs whose states are worked out; nil: all
	if stale != nil {
		want = maps.Clone(stale)
		for _, l := range d.Labs {
			if l.State == store.LabStopping {
				want[l.ID] = true
			}
		}
	}
	nodes := byLab(d.Nodes, func(n store.LabNode) string { return n.Lab }, want)
	links := byLab(d.Links, func(ls store.LinkState) string { return ls.LabID }, want)
	mgmt := byLab(d.Mgmt, func(m store.MgmtSegment) string { return m.LabID }, want)
	stopping := false
	for _, l := range d.Labs {
		if l.State == store.LabStopping {
			stopping = true
		}
		if !runs(l.State) || stale != nil && !stale[l.ID] {
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

// byLab groups items by their lab, of the labs in want (all when nil),
// each group allocated once at its size: grown by append, 200 000 nodes
// would be copied again and again.
func byLab[T any](items []T, lab func(T) string, want map[string]bool) map[string][]T {
	n := map[string]int{}
	for _, it := range items {
		if l := lab(it); want == nil || want[l] {
			n[l]++
		}
	}
	out := make(map[string][]T, len(n))
	for _, it := range items {
		l := lab(it)
		if want != nil && !want[l] {
			continue
		}
		if out[l] == nil {
			out[l] = make([]T, 0, n[l])
		}
		out[l] = append(out[l], it)
	}
	return out
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

// errNoAnswer is why a declaration was given up: the agent answered
// neither it nor a health check in time.
var errNoAnswer = errors.New("no answer")

// declareTo sends one host its declaration and sorts out its answer; failed
// says why none came ("" when the agent answered, even with an error). An agent without
// /host/declare-state gets its tunnels through /overlay/declare-state, and
// one without that the whitelist (by status code, W-19); on both its nodes
// and interfaces are errors.
func (c *Controller) declareTo(ctx context.Context, h store.Host, decl wire.HostDeclaration) (sum wire.AgentConvergence, a *hostAnswer, failed string) {
	sum = wire.AgentConvergence{Host: h.Name, Generation: *decl.Generation, At: time.Now().UTC(), Nodes: len(decl.Nodes),
		Tunnels: len(decl.Tunnels), Results: map[string]int{}, OrphansRemoved: []string{}}
	for _, n := range decl.Nodes {
		sum.Interfaces += len(n.Interfaces)
	}
	a = newHostAnswer(h.Name)
	resp, fallback, err := c.declareCall(ctx, h, decl)
	sum.Fallback = fallback
	if err != nil {
		sum.Error = err.Error()
		a.unknown = fmt.Sprintf("%s: %v", h.Name, err)
		switch {
		case errors.Is(err, errNoAnswer):
			failed = err.Error()
		case errors.Is(err, client.ErrUnreachable):
			a.unknown, failed = h.Name+" unreachable", err.Error()
		}
		c.log.Warn("host not declared", "host", h.Name, "err", err)
		return sum, a, failed
	}
	if resp.Skipped != nil {
		sum.Skipped = *resp.Skipped
		a.unknown = fmt.Sprintf("%s could not read its bridge (%s)", h.Name, *resp.Skipped)
		c.log.Warn("host skipped its declaration", "host", h.Name, "skipped", *resp.Skipped)
		return sum, a, ""
	}
	// A held declaration answered as before is sorted out as before.
	held := decl.Digest != "" && resp.AnswerDigest != ""
	if held {
		if s := c.conds.sortedFor(h.Name, decl.Digest, resp.AnswerDigest); s != nil {
			sum.Results, sum.OrphansRemoved = maps.Clone(s.results), slices.Clone(s.orphans)
			return sum, s.a, ""
		}
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
	if held {
		c.conds.keepSorted(h.Name, &sortedAnswer{decl: decl.Digest, answer: resp.AnswerDigest,
			results: maps.Clone(sum.Results), orphans: slices.Clone(sum.OrphansRemoved), a: a})
	}
	return sum, a, ""
}

// declareCall sends a declaration, bounded by DeclareTimeout: placing
// nodes may take long (images, containers). An agent that cannot even
// answer a health check within AgentTimeout is hung, though, and is given
// up then: the one hung host must not hold up its line for long.
func (c *Controller) declareCall(ctx context.Context, h store.Host, decl wire.HostDeclaration) (resp wire.HostDeclarationResponse, fallback bool, err error) {
	start := time.Now()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cctx, stop := context.WithTimeoutCause(cctx, c.cfg.DeclareTimeout, fmt.Errorf("%w in %v", errNoAnswer, c.cfg.DeclareTimeout))
	defer stop()
	ag := c.agent(h)
	half := c.cfg.AgentTimeout / 2 // a check at half the budget, for half the budget
	probe := time.AfterFunc(half, func() {
		pctx, pcancel := context.WithTimeout(cctx, half)
		defer pcancel()
		if err := ag.Health(pctx); errors.Is(err, client.ErrUnreachable) && cctx.Err() == nil {
			cancel(fmt.Errorf("%w in %v", errNoAnswer, time.Since(start).Round(100*time.Millisecond)))
		}
	})
	defer probe.Stop()
	resp, err = c.declareHost(cctx, ag, h.Name, decl)
	if errors.Is(err, client.ErrNotFound) {
		fallback = true
		resp, err = declareOld(cctx, ag, decl)
	}
	if cause := context.Cause(cctx); err != nil && errors.Is(cause, errNoAnswer) {
		err = cause // what the agent did not do, rather than how the call ended
	}
	return resp, fallback, err
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
