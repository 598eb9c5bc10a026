package controller

import (
	"cmp"
	"context"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// heldState is the leader's copy of the desired state between rounds, and
// what is derived from it alone: read at 100 000 links it costs a second,
// and it rarely changes. Every write to it moves the store's desired
// revision on, whichever controller made it, so the copy is good while the
// revision and the hosts' addresses are what it was read with; a write to
// one lab's rows moves that lab's revision too, so only that lab need be
// read again. Hosts are read anew each round: heartbeats change them all
// the time.
type heldState struct {
	d *store.Desired // allocated; observe updates it in place
	// links and mgmt are what could not be allocated, logged again each
	// round as when read.
	links, mgmt []error
	// decls are every host's declaration without omissions, each with
	// its digest, for the rounds that omit nothing.
	decls map[string]*wire.HostDeclaration
	// observed are the answers d was last observed with, and underlays
	// the hosts' underlay checks then: the same answers on the same
	// state and underlays would change nothing again. dirty are the
	// labs read again since: their state is not the one observed.
	observed  map[string]*hostAnswer
	underlays map[string][]wire.UnderlayCheck
	dirty     map[string]bool
}

// observedWith records that d was observed with answers: observing them
// again would change nothing.
func (k *heldState) observedWith(answers map[string]*hostAnswer) {
	k.observed = maps.Clone(answers)
	k.underlays = map[string][]wire.UnderlayCheck{}
	for _, h := range k.d.Hosts {
		k.underlays[h.Name] = h.Underlay
	}
	k.dirty = nil
}

// unchanged reports whether answers are those d was last observed with,
// on the same state, and the hosts' underlays say what they said then.
func (k *heldState) unchanged(answers map[string]*hostAnswer) bool {
	return len(k.dirty) == 0 && len(answers) == len(k.observed) && len(k.changedHosts(answers)) == 0
}

// changedHosts returns the hosts whose answers are not those d was last
// observed with (the very same, or unknown for the same reason), or
// whose underlays do not say what they said then.
func (k *heldState) changedHosts(answers map[string]*hostAnswer) map[string]bool {
	out := map[string]bool{}
	for host, a := range answers {
		was := k.observed[host]
		if was == nil || was != a && (a.unknown == "" || a.unknown != was.unknown) {
			out[host] = true
		}
	}
	for host := range k.observed {
		if answers[host] == nil {
			out[host] = true
		}
	}
	for _, h := range k.d.Hosts {
		if !slices.EqualFunc(h.Underlay, k.underlays[h.Name], sameCheck) {
			out[h.Name] = true
		}
	}
	return out
}

// stale returns the labs that observing answers may change: those read
// again since d was observed, and those that span a host whose answer or
// underlay changed. nil means every lab: d was never observed.
func (k *heldState) stale(answers map[string]*hostAnswer) map[string]bool {
	if k.observed == nil {
		return nil
	}
	out := maps.Clone(k.dirty)
	if out == nil {
		out = map[string]bool{}
	}
	changed := k.changedHosts(answers)
	if len(changed) == 0 {
		return out
	}
	for _, n := range k.d.Nodes {
		if changed[n.PlacedOn] {
			out[n.Lab] = true
		}
	}
	for _, ls := range k.d.Links {
		if changed[ls.SourceHost] || changed[ls.TargetHost] {
			out[ls.LabID] = true
		}
	}
	for _, m := range k.d.Mgmt {
		if changed[m.Host] || changed[m.Hub] {
			out[m.LabID] = true
		}
	}
	return out
}

// sameCheck reports whether two underlay checks found the same; when they
// ran does not matter.
func sameCheck(a, b wire.UnderlayCheck) bool {
	a.CheckedAt, b.CheckedAt = time.Time{}, time.Time{}
	return a == b
}

// desiredLocked returns the desired state for a round, allocated and
// saved, from the copy held when it is still good, patched with what
// moved when only some labs did, else read anew; under stateMu.
func (c *Controller) desiredLocked(ctx context.Context) (*heldState, error) {
	if k := c.held; k != nil {
		revs, err := c.store.Revisions(ctx)
		if err != nil {
			return nil, err
		}
		if labs, ok := k.movedLabs(revs); ok {
			hosts, err := c.store.Hosts(ctx)
			if err != nil {
				return nil, err
			}
			if sameAddresses(k.d.Hosts, hosts) {
				if revs.Value == k.d.Revision {
					k.d.Hosts = hosts
					return k, nil
				}
				return c.patchLocked(ctx, k, revs, labs, hosts)
			}
		}
		c.held = nil
	}
	d, err := c.store.Desired(ctx)
	if err != nil {
		return nil, err
	}
	k := &heldState{d: &d}
	if _, err := c.allocateLocked(ctx, k); err != nil {
		return nil, err
	}
	k.decls = hostDeclarations(d, nil)
	digestAll(k.decls)
	c.held = k
	return k, nil
}

// movedLabs returns the labs whose revisions moved since k was read, and
// whether reading those again is enough: not when a write that is not
// one lab's own moved Whole, nor when labs came or went.
func (k *heldState) movedLabs(revs store.Revisions) ([]string, bool) {
	if revs.Whole != k.d.Whole || len(revs.Labs) != len(k.d.LabRevisions) {
		return nil, false
	}
	var moved []string
	for lab, r := range revs.Labs {
		was, ok := k.d.LabRevisions[lab]
		if !ok {
			return nil, false
		}
		if r != was {
			moved = append(moved, lab)
		}
	}
	slices.Sort(moved)
	return moved, true
}

// allocateLocked allocates k's desired state and saves what it gave,
// keeping in k what could not be allocated; it returns the labs it gave
// anything. Saving moves their revisions past d's: the next round reads
// them back rather than trust this copy.
func (c *Controller) allocateLocked(ctx context.Context, k *heldState) (map[string]bool, error) {
	d := k.d
	gave := map[string]bool{}
	allocs, tunnels, drop, problems := allocate(d)
	k.links = problems
	if len(allocs)+len(tunnels)+len(drop) > 0 {
		if err := c.store.SaveAllocations(ctx, allocs, tunnels, drop); err != nil {
			return nil, err
		}
		ids := map[string]bool{}
		for _, a := range allocs {
			ids[a.LinkStateID] = true
		}
		for _, id := range drop {
			ids[id] = true
		}
		for _, ls := range d.Links {
			if ids[ls.ID] {
				gave[ls.LabID] = true
			}
		}
		for _, t := range tunnels {
			gave[t.LabID] = true
		}
	}
	mgmt, problems := allocateMgmt(d)
	k.mgmt = problems
	if !mgmt.Empty() {
		if err := c.store.SaveMgmt(ctx, mgmt); err != nil {
			return nil, err
		}
		for _, a := range mgmt.Addresses {
			gave[a.Lab] = true
		}
		for _, m := range slices.Concat(mgmt.Segments, mgmt.Drop) {
			gave[m.LabID] = true
		}
	}
	return gave, nil
}

// patchLocked brings the held state k up to revs when only the labs in
// moved did: it reads those labs again (the same six statements whatever
// their size), puts them in place of what it held of them, allocates
// the whole again (tags are unique per host across labs, and what a lab
// let go may be what another waited for), and builds again the
// declarations of the hosts that the labs it read or allocated spanned,
// before or now. Every other host keeps its declaration and digest.
func (c *Controller) patchLocked(ctx context.Context, k *heldState, revs store.Revisions, moved []string, hosts []store.Host) (*heldState, error) {
	fresh, err := c.store.DesiredLabs(ctx, moved)
	if err != nil {
		return nil, err
	}
	was := k.d
	labs := map[string]bool{}
	for _, l := range moved {
		labs[l] = true
	}
	d := store.Desired{Revision: revs.Value, Whole: was.Whole, LabRevisions: maps.Clone(was.LabRevisions), Hosts: hosts,
		Labs: patch(was.Labs, fresh.Labs, labs, func(l store.Lab) string { return l.ID },
			func(a, b store.Lab) int { return strings.Compare(a.Name, b.Name) }),
		Nodes: patch(was.Nodes, fresh.Nodes, labs, func(n store.LabNode) string { return n.Lab },
			func(a, b store.LabNode) int {
				return cmp.Or(strings.Compare(a.Lab, b.Lab), strings.Compare(a.Name, b.Name))
			}),
		Links: patch(was.Links, fresh.Links, labs, func(ls store.LinkState) string { return ls.LabID },
			func(a, b store.LinkState) int { return strings.Compare(a.Name, b.Name) }),
		Mappings: patch(was.Mappings, fresh.Mappings, labs, func(m store.MappingObservation) string { return m.Lab }, nil),
		Files:    map[string]map[string][]byte{},
		Mgmt: patch(was.Mgmt, fresh.Mgmt, labs, func(m store.MgmtSegment) string { return m.LabID },
			func(a, b store.MgmtSegment) int {
				return cmp.Or(strings.Compare(a.LabID, b.LabID), strings.Compare(a.Host, b.Host))
			}),
	}
	for lab, f := range was.Files {
		if !labs[lab] {
			d.Files[lab] = f
		}
	}
	maps.Copy(d.Files, fresh.Files)
	for _, l := range moved {
		d.LabRevisions[l] = revs.Labs[l]
	}
	// The rest was observed as before: what the labs read again held
	// then is no more.
	nk := &heldState{d: &d, observed: k.observed, underlays: k.underlays, dirty: maps.Clone(k.dirty)}
	gave, err := c.allocateLocked(ctx, nk)
	if err != nil {
		return nil, err
	}
	maps.Copy(labs, gave)
	if nk.dirty == nil {
		nk.dirty = map[string]bool{}
	}
	maps.Copy(nk.dirty, labs)
	spanned := spans(*was, labs)
	maps.Copy(spanned, spans(d, labs))
	rebuilt := declarationsOf(d, nil, spanned)
	digestAll(rebuilt)
	nk.decls = maps.Clone(k.decls)
	maps.Copy(nk.decls, rebuilt)
	c.held = nk
	return nk, nil
}

// patch returns held's rows but those of the labs in labs, with fresh's in
// their place, in the order of order (both come sorted by it), or after
// them when order is nil.
func patch[T any](held, fresh []T, labs map[string]bool, lab func(T) string, order func(a, b T) int) []T {
	out := make([]T, 0, len(held)+len(fresh))
	i := 0
	for _, x := range held {
		if labs[lab(x)] {
			continue
		}
		for order != nil && i < len(fresh) && order(fresh[i], x) < 0 {
			out = append(out, fresh[i])
			i++
		}
		out = append(out, x)
	}
	return append(out, fresh[i:]...)
}

// spans returns the hosts whose declarations hold anything of the labs in
// labs: their nodes' hosts, their links' sides' hosts and their
// management segments' hosts.
func spans(d store.Desired, labs map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, n := range d.Nodes {
		if labs[n.Lab] && n.PlacedOn != "" {
			out[n.PlacedOn] = true
		}
	}
	for _, ls := range d.Links {
		if labs[ls.LabID] {
			out[ls.SourceHost], out[ls.TargetHost] = true, true
		}
	}
	for _, m := range d.Mgmt {
		if labs[m.LabID] {
			out[m.Host] = true
		}
	}
	delete(out, "")
	return out
}

// digestAll gives each declaration its digest, on every CPU: hashing 1000
// hosts' declarations takes a CPU long, and the rounds were hashing them
// in parallel before they were held.
func digestAll(decls map[string]*wire.HostDeclaration) {
	todo := make(chan *wire.HostDeclaration)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for decl := range todo {
				decl.Digest = decl.Sum()
			}
		})
	}
	for _, decl := range decls {
		todo <- decl
	}
	close(todo)
	wg.Wait()
}

// sameAddresses reports whether two readings of the hosts agree on what
// allocations and declarations are built from: the hosts, their data
// addresses and their underlay MTUs.
func sameAddresses(a, b []store.Host) bool {
	return slices.EqualFunc(a, b, func(x, y store.Host) bool {
		return x.Name == y.Name && x.DataIP == y.DataIP && x.UnderlayMTU == y.UnderlayMTU
	})
}
