package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netloom/netloom/internal/agent/underlay"
	"github.com/netloom/netloom/internal/agent/vlan"
	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// nodeWorkers bounds how many nodes the runtime makes or removes at once.
const nodeWorkers = 8

// releaseAfter is how many changes of one convergence make the agent hand
// its free memory back to the system at once: a declaration of 1000
// tunnels left it holding 43–45 MB, 35–37 MB after, for a few
// milliseconds of a collection; a small change leaves little to release.
const releaseAfter = 100

// errUnreadable marks a convergence that could not read the bridge or the
// runtime: it changed nothing (W-18).
var errUnreadable = errors.New("host state unreadable")

// converger keeps the host matching what the agent holds: nodes, their
// interfaces' ports and tunnels. Every way in — a declaration, one of the
// original's per-link calls, a repair, the start-up restore — is a
// hostState converged by converge; one lock serialises them all (W-5).
type converger struct {
	driver   fabric.Driver
	runtime  runtime.Runtime
	stateDir string
	mtu      int // for tunnels that declare none
	// fullChecksums makes nodes send complete checksums (Config).
	fullChecksums bool
	gens          generations
	log           *slog.Logger
	m             *metrics
	// drift gathers the watches' events between repairs.
	drift *drift
	// ended is when the last convergence ended, zero while one runs.
	ended atomic.Pointer[time.Time]

	mu sync.Mutex
	// mu guards the following, and every Apply.
	held       hostState
	names      map[string]bool // the held ports' names, for drift events
	generation int64           // the last applied declaration's
	// covered is the drift sequence number up to which a convergence that
	// succeeded whole has seen the events' effects (see relevant).
	covered    uint64
	tags       *vlan.Allocator // for the original's per-link calls only
	written    *hostState      // what the cache file holds, once written
	writtenGen int64           // and the generation it holds
	// writtenDigest is the digest of the declaration it holds.
	writtenDigest string
	cacheErr      error // why the last cache write failed; nil once one succeeds
	// cacheWhy is cacheErr's text for /healthz, which answers without mu:
	// a convergence holds mu for as long as it makes nodes, and a health
	// check must not wait for it (the controller takes that for hung).
	cacheWhy atomic.Pointer[string]
	// last is the last whole host declaration with a digest, without its
	// generation: what a conditional declaration (same_as) stands for.
	last *wire.HostDeclaration
	// restored are the labs the start-up restore took from the cache: the
	// first declaration with a generation removes those outside its scope
	// (a lab destroyed while the agent was down is in no later scope).
	restored map[string]bool

	// heldChanged is signalled whenever held is replaced, for the underlay
	// check, which follows the tunnels' peers.
	heldChanged chan struct{}
}

func newConverger(d fabric.Driver, rt runtime.Runtime, stateDir string, mtu int, gens generations, log *slog.Logger, m *metrics) *converger {
	c := &converger{
		driver: d, runtime: rt, stateDir: stateDir, mtu: mtu, gens: gens, log: log, m: m,
		held: newHostState(), names: map[string]bool{}, tags: vlan.New(nil), heldChanged: make(chan struct{}, 1),
		drift: newDrift(),
	}
	c.ended.Store(&time.Time{}) // none has run: none to wait for
	return c
}

// converge makes the host hold next, planned from in (next in the order
// results are reported): one observe of the bridge and the runtime, one
// plan, the runtime's work, one Apply. It removes what the agent held and
// next does not, and what pr covers. With cache, next is written to the
// cache first, so a crash restarts into it. The caller holds c.mu.
func (c *converger) converge(ctx context.Context, in planInput, next hostState, pr prune, gen int64, cache bool) (hostPlan, error) {
	c.ended.Store(nil)
	defer func() {
		now := time.Now()
		c.ended.Store(&now)
	}()
	seen, drifted := c.drift.mark() // events recorded so far are in what Observe reads
	obs, err := c.driver.Observe(ctx)
	if err != nil {
		c.m.skipped.Inc()
		return hostPlan{}, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	// The runtime is read only when nodes are at stake: a host of tunnels
	// alone is converged on one read of the bridge.
	var running []runtime.Node
	if len(in.nodes) > 0 || len(c.held.nodes) > 0 || pr.nodes != nil {
		if running, err = c.runtime.List(ctx); err != nil {
			c.m.skipped.Inc()
			return hostPlan{}, fmt.Errorf("%w: %w", errUnreadable, err)
		}
	}
	if cache {
		c.writeCache(next, gen)
	}
	hp := planHost(in, c.held, obs, running, pr, c.mtu)
	c.carryOut(ctx, &hp, in)
	if len(hp.failures()) == 0 {
		c.covered = max(c.covered, seen)
		hp.drifted = drifted
	}
	c.held, c.generation = next, gen
	c.signalHeld()
	c.names = map[string]bool{}
	for name := range next.tunnels {
		c.names[name] = true
	}
	for name := range next.ports() {
		c.names[name] = true
	}
	inUse := next.tags()
	for _, p := range obs.Ports {
		inUse = append(inUse, p.Tag)
	}
	c.tags.Sync(inUse)
	if hp.plan.Changes() >= releaseAfter {
		// The heap peaked at about twice what the burst kept live, and the
		// runtime returns the difference to the system only over minutes.
		debug.FreeOSMemory()
	}
	return hp, nil
}

// carryOut does a plan: stale ports off the bridge, the runtime's nodes,
// one Apply for the bridge and tunnels, then the nodes that go and the exec
// commands of new nodes. A failure turns the results it concerns into
// errors; what succeeded stays.
func (c *converger) carryOut(ctx context.Context, hp *hostPlan, in planInput) {
	staleFailed := map[string]bool{}
	if len(hp.stale) > 0 {
		if err := c.driver.Apply(ctx, fabric.Plan{DeletePorts: hp.stale}); err != nil {
			c.log.Error("stale ports not removed", "err", err)
			for _, name := range hp.stale {
				staleFailed[name] = true
			}
		}
	}
	made := make([]runtime.Node, len(hp.work))
	errs := make([]error, len(hp.work))
	parallel(len(hp.work), func(i int) {
		spec := hp.work[i].spec
		spec.FullChecksums = c.fullChecksums
		if spec.Container, errs[i] = writeNodeFiles(c.stateDir, spec.Lab, spec.Name, spec.Container, hp.work[i].files); errs[i] != nil {
			return
		}
		made[i], errs[i] = c.runtime.CreateNode(ctx, spec)
	})
	var fresh []nodeKey
	for i, w := range hp.work {
		res := &hp.nodes[w.result]
		if errs[i] != nil {
			msg := errs[i].Error()
			res.Status, res.Error = wire.StatusError, &msg
			for _, j := range w.ifaces {
				hp.ifaces[j].Status, hp.ifaces[j].Error, hp.ifaces[j].ActualVLAN = wire.StatusError, &msg, nil
			}
			c.log.Warn("node not made", "lab", w.key.Lab, "node", w.key.Node, "err", errs[i])
			continue
		}
		res.RuntimeID = made[i].ID
		switch {
		case made[i].New:
			res.Status = wire.StatusCreated
			fresh = append(fresh, w.key)
		case len(w.ports) == 0 && !w.extra && !w.readdress:
			res.Status = wire.StatusConverged // a node without interfaces, found as it was
		default:
			res.Status = wire.StatusUpdated
		}
		for k, p := range w.ports {
			j := w.ifaces[k]
			if staleFailed[p.Name] {
				msg := fmt.Sprintf("port %s could not leave the bridge to be made again", p.Name)
				hp.ifaces[j].Status, hp.ifaces[j].Error, hp.ifaces[j].ActualVLAN = wire.StatusError, &msg, nil
				continue
			}
			hp.plan.AddPorts = append(hp.plan.AddPorts, p)
			hp.changedIfaces[j] = true
		}
	}
	if err := c.applyPlan(ctx, hp.plan); err != nil {
		c.failApply(hp, err)
	} else {
		c.deleteNodes(ctx, hp)
	}
	c.execFresh(ctx, hp, in, fresh)
}

func (c *converger) applyPlan(ctx context.Context, p fabric.Plan) error {
	if p.Empty() {
		return nil
	}
	return c.driver.Apply(ctx, p)
}

// failApply turns a failed Apply into error results. A partial failure
// concerns only the devices it names; any other failure, every change of
// the plan, and the removals did not happen.
func (c *converger) failApply(hp *hostPlan, err error) {
	c.log.Error("apply failed", "err", err)
	var pe *fabric.PartialError
	if errors.As(err, &pe) {
		for i, r := range hp.tunnels {
			if ferr, failed := pe.Failed[r.PortName]; failed && hp.changedTunnels[r.PortName] {
				msg := ferr.Error()
				hp.tunnels[i].Status, hp.tunnels[i].Error, hp.tunnels[i].ActualVLAN = wire.StatusError, &msg, nil
			}
		}
		return
	}
	msg := err.Error()
	notRemoved := "not removed: " + msg
	for i := range hp.ifaces {
		if hp.changedIfaces[i] {
			hp.ifaces[i].Status, hp.ifaces[i].Error, hp.ifaces[i].ActualVLAN = wire.StatusError, &msg, nil
		}
	}
	for _, i := range hp.removedIfaces {
		hp.ifaces[i].Status, hp.ifaces[i].Error = wire.StatusError, &notRemoved
	}
	for i, r := range hp.tunnels {
		if hp.changedTunnels[r.PortName] {
			hp.tunnels[i].Status, hp.tunnels[i].Error, hp.tunnels[i].ActualVLAN = wire.StatusError, &msg, nil
		}
	}
	for _, i := range hp.removedTunnels {
		hp.tunnels[i].Status, hp.tunnels[i].Error = wire.StatusError, &notRemoved
	}
	// Nodes whose ports are still on the bridge stay too.
	for i := range hp.nodes {
		if hp.nodes[i].Status == wire.StatusRemoved {
			hp.nodes[i].Status, hp.nodes[i].Error = wire.StatusError, &notRemoved
		}
	}
}

// deleteNodes removes the nodes that go, now that the bridge no longer
// holds their ports.
func (c *converger) deleteNodes(ctx context.Context, hp *hostPlan) {
	errs := make([]error, len(hp.deleteNodes))
	parallel(len(hp.deleteNodes), func(i int) {
		k := hp.deleteNodes[i]
		if errs[i] = c.runtime.DeleteNode(ctx, k.Lab, k.Node); errs[i] == nil {
			errs[i] = removeNodeFiles(c.stateDir, k.Lab, k.Node)
		}
	})
	failed := map[nodeKey]error{}
	for i, err := range errs {
		if err != nil {
			failed[hp.deleteNodes[i]] = err
		}
	}
	for i, r := range hp.nodes {
		if err, ok := failed[nodeKey{r.LabID, r.Name}]; ok && r.Status == wire.StatusRemoved {
			msg := err.Error()
			hp.nodes[i].Status, hp.nodes[i].Error = wire.StatusError, &msg
			c.log.Warn("node not removed", "lab", r.LabID, "node", r.Name, "err", err)
		}
	}
}

// execFresh runs the exec commands of the nodes this convergence made, as
// containerlab does: once, after the node's interfaces exist and are on the
// bridge. A failure is reported with the node, not fatal.
func (c *converger) execFresh(ctx context.Context, hp *hostPlan, in planInput, fresh []nodeKey) {
	if len(fresh) == 0 {
		return
	}
	cmds := map[nodeKey][]string{}
	for _, n := range in.nodes {
		if len(n.Exec) > 0 {
			cmds[keyOf(n)] = n.Exec
		}
	}
	failures := make([][]wire.ExecFailure, len(fresh))
	parallel(len(fresh), func(i int) {
		k := fresh[i]
		for _, cmd := range cmds[k] {
			if f, failed := c.execLine(ctx, k, cmd); failed {
				failures[i] = append(failures[i], f)
				c.log.Warn("exec failed", "lab", k.Lab, "node", k.Node, "command", cmd, "exit_code", f.ExitCode, "err", f.Error)
			}
		}
	})
	byKey := map[nodeKey][]wire.ExecFailure{}
	for i, k := range fresh {
		byKey[k] = failures[i]
	}
	for i, r := range hp.nodes {
		if fs := byKey[nodeKey{r.LabID, r.Name}]; len(fs) > 0 && r.Status == wire.StatusCreated {
			hp.nodes[i].ExecFailures = fs
		}
	}
}

// execLine runs one exec command of a lab file with sh, as containerlab
// does, and reports whether it failed, with its output.
func (c *converger) execLine(ctx context.Context, k nodeKey, cmd string) (wire.ExecFailure, bool) {
	stdout, stderr := &capped{max: wire.MaxExecOutput}, &capped{max: wire.MaxExecOutput}
	code, err := c.runtime.Exec(ctx, k.Lab, k.Node, []string{"sh", "-c", cmd}, stdout, stderr)
	f := wire.ExecFailure{Command: cmd, ExitCode: code, Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		f.Error = err.Error()
	}
	return f, err != nil || code != 0
}

// capped keeps the first max bytes written to it and says when it dropped
// the rest.
type capped struct {
	max  int
	buf  []byte
	more bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - len(c.buf)
	if len(p) > room {
		c.more = true
		c.buf = append(c.buf, p[:max(room, 0)]...)
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *capped) String() string {
	if c.more {
		return string(c.buf) + "\n[output cut]\n"
	}
	return string(c.buf)
}

// parallel runs fn for 0 … n-1 on at most nodeWorkers goroutines.
func parallel(n int, fn func(i int)) {
	if n == 0 {
		return
	}
	sem := make(chan struct{}, nodeWorkers)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// repair converges the host to what the agent holds, without a declaration
// and without removing anything it does not hold: after drift, on the
// health pass and at start-up.
func (c *converger) repair(ctx context.Context, cause string) error {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	hp, err := c.converge(ctx, c.held.input(), c.held, prune{}, c.generation, c.cacheErr != nil)
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if !hp.changed() {
		return nil
	}
	// Events recorded after this repair was called for and before it
	// observed the host are its own: it repaired what they did, and the
	// repair they woke will find nothing. Name it after the least of all,
	// so that a burst is counted alike whichever repair meets it.
	if hp.drifted != "" && hp.drifted < cause {
		cause = hp.drifted
	}
	c.m.repairs.WithLabelValues(cause).Inc()
	c.m.duration.Observe(time.Since(start).Seconds())
	failed := hp.failures()
	c.log.Info("repaired", "cause", cause, "nodes", len(hp.work), "dur", time.Since(start))
	if len(failed) > 0 {
		return fmt.Errorf("repair: %d objects failed: %v", len(failed), failed)
	}
	return nil
}

// afterConvergence is how long a repair waits after a convergence ends.
// The events that a convergence's own changes cause (devices made, then
// set up; columns ovs-vswitchd fills in) arrive while it runs, after it
// observed the host; a declaration that follows closely (a retry, the next
// of a series) sees them, and so the repair they call for becomes needless
// (see relevant), instead of running first and making it wait.
const afterConvergence = 250 * time.Millisecond

// settled waits for debounce, then until no convergence has run for
// afterConvergence, or ctx ends, and reports whether it waited that long.
func (c *converger) settled(ctx context.Context, debounce time.Duration) bool {
	wait := debounce
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		ended := c.ended.Load()
		if ended == nil { // one runs: wait for it to end
			wait = debounce
			continue
		}
		if wait = afterConvergence - time.Since(*ended); wait <= 0 {
			return true
		}
	}
}

// changed reports whether the plan did anything.
func (hp hostPlan) changed() bool {
	return len(hp.work) > 0 || len(hp.stale) > 0 || !hp.plan.Empty() || len(hp.deleteNodes) > 0
}

// failures lists every result in error, with its reason.
func (hp hostPlan) failures() []string {
	var out []string
	for _, r := range hp.nodes {
		if r.Status == wire.StatusError {
			out = append(out, "node "+r.LabID+"/"+r.Name+": "+*r.Error)
		}
	}
	for _, r := range hp.ifaces {
		if r.Status == wire.StatusError {
			out = append(out, "port "+r.PortName+": "+*r.Error)
		}
	}
	for _, r := range hp.tunnels {
		if r.Status == wire.StatusError {
			out = append(out, "tunnel "+r.PortName+": "+*r.Error)
		}
	}
	return out
}

// restore loads the cache and converges to it at start-up, before the agent
// talks to the controller: nothing is flushed, nothing removed, matching
// devices are adopted with their ifindex, and nodes lost with a reboot are
// made again. A corrupt cache is logged and ignored.
func (c *converger) restore(ctx context.Context) error {
	cf, err := readCache(c.stateDir)
	if err != nil {
		c.log.Error("ignoring the declared-state cache", "err", err)
		cf = cacheFile{}
	}
	c.mu.Lock()
	c.held = stateOf(cf.Nodes, cf.Tunnels)
	c.generation = max(c.generation, cf.Generation)
	c.last = restoredDeclaration(cf)
	c.restored = c.held.labs()
	c.signalHeld()
	c.mu.Unlock()
	c.log.Info("restoring from cache", "nodes", len(cf.Nodes), "tunnels", len(cf.Tunnels), "generation", cf.Generation, "declared_at", cf.DeclaredAt)
	return c.repair(ctx, "restore")
}

// restoredDeclaration returns the last whole declaration a cache names,
// when what it lists is exactly that declaration (its digest says so); nil
// when the agent held more or less than it (a placeholder, another lab, a
// per-link call of the original), which a conditional declaration then
// cannot stand for.
func restoredDeclaration(cf cacheFile) *wire.HostDeclaration {
	if cf.Digest == "" {
		return nil
	}
	d := wire.HostDeclaration{Nodes: cf.Nodes, Tunnels: cf.Tunnels, DeclaredLabs: cf.DeclaredLabs}
	if d.Sum() != cf.Digest {
		return nil
	}
	d.Digest = cf.Digest
	return &d
}

// writeCache persists the state. A failure does not stop the convergence
// (the host is what matters now, the cache only after a restart), but it is
// kept in c.cacheErr, which declarations and /healthz report, and the old
// cache file is removed: a restart must not restore a state older than the
// one the host holds.
func (c *converger) writeCache(s hostState, gen int64) {
	var digest string // the held declaration's, which a restore checks
	var labs []string
	if c.last != nil {
		digest, labs = c.last.Digest, c.last.DeclaredLabs
	}
	// The same state again is not written again: an fsync per repeated
	// declaration is most of a no-op declaration's time. It is compared as
	// maps: sorting and encoding it to compare cost a no-op of ten thousand
	// tunnels about 25 ms.
	if c.written != nil && gen == c.writtenGen && digest == c.writtenDigest && c.written.same(s) {
		return
	}
	cf := cacheFile{Generation: gen, DeclaredAt: time.Now().UTC(), Nodes: s.nodeList(), Tunnels: s.tunnelList(),
		Digest: digest, DeclaredLabs: labs}
	if err := writeCache(c.stateDir, cf); err != nil {
		if rerr := removeCache(c.stateDir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		c.log.Error("cache not written", "generation", gen, "err", err)
		c.written, c.cacheErr = nil, err
		why := err.Error()
		c.cacheWhy.Store(&why)
		return
	}
	if c.cacheErr != nil {
		c.log.Info("cache written again", "generation", gen)
	}
	written := s.clone()
	c.written, c.writtenGen, c.writtenDigest, c.cacheErr = &written, gen, digest, nil
	c.cacheWhy.Store(nil)
}

// cacheProblem returns why the cache is not written, "" when it is.
func (c *converger) cacheProblem() string {
	if why := c.cacheWhy.Load(); why != nil {
		return *why
	}
	return ""
}

// cacheError is a declaration's cache_error: the reason the cache write
// failed, nil when it did not. The caller holds c.mu.
func (c *converger) cacheError() *string {
	if c.cacheErr == nil {
		return nil
	}
	msg := c.cacheErr.Error()
	return &msg
}

// appliedGeneration returns the last applied declaration's generation.
func (c *converger) appliedGeneration() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// signalHeld tells the underlay check that held changed, without blocking.
func (c *converger) signalHeld() {
	select {
	case c.heldChanged <- struct{}{}:
	default:
	}
}

// peers returns the hosts the held tunnels lead to.
func (c *converger) peers() []underlay.Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return peersOf(c.held.tunnels, c.mtu)
}
