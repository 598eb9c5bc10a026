package controller

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// heldState is the leader's copy of the desired state between rounds, and
// what is derived from it alone: read at 100 000 links it costs a second,
// and it rarely changes. Every write to it moves the store's desired
// revision on, whichever controller made it, so the copy is good while the
// revision and the hosts' addresses are what it was read with. Hosts are
// read anew each round: heartbeats change them all the time.
type heldState struct {
	d *store.Desired // allocated; observe updates it in place
	// links and mgmt are what could not be allocated, logged again each
	// round as when read.
	links, mgmt []error
	// decls are every host's declaration without omissions, each with
	// its digest, for the rounds that omit nothing.
	decls map[string]*wire.HostDeclaration
	// observed are the answers d was last observed with, to no change,
	// and underlays the hosts' underlay checks then: the same answers
	// on the same state and underlays would change nothing again.
	observed  map[string]*hostAnswer
	underlays map[string][]wire.UnderlayCheck
}

// observedWith records that observing answers on d changed nothing.
func (k *heldState) observedWith(answers map[string]*hostAnswer) {
	k.observed = maps.Clone(answers)
	k.underlays = map[string][]wire.UnderlayCheck{}
	for _, h := range k.d.Hosts {
		k.underlays[h.Name] = h.Underlay
	}
}

// unchanged reports whether answers are those d was last observed with
// (the very same, or unknown for the same reason), from the same hosts,
// and the hosts' underlays say what they said then.
func (k *heldState) unchanged(answers map[string]*hostAnswer) bool {
	if len(answers) != len(k.observed) {
		return false
	}
	for host, a := range answers {
		was := k.observed[host]
		if was == nil || was != a && (a.unknown == "" || a.unknown != was.unknown) {
			return false
		}
	}
	for _, h := range k.d.Hosts {
		if !slices.EqualFunc(h.Underlay, k.underlays[h.Name], sameCheck) {
			return false
		}
	}
	return true
}

// sameCheck reports whether two underlay checks found the same; when they
// ran does not matter.
func sameCheck(a, b wire.UnderlayCheck) bool {
	a.CheckedAt, b.CheckedAt = time.Time{}, time.Time{}
	return a == b
}

// desiredLocked returns the desired state for a round, allocated and
// saved, from the copy held when it is still good, else read anew; under
// stateMu.
func (c *Controller) desiredLocked(ctx context.Context) (*heldState, error) {
	if k := c.held; k != nil {
		rev, err := c.store.Revision(ctx)
		if err != nil {
			return nil, err
		}
		if rev == k.d.Revision {
			hosts, err := c.store.Hosts(ctx)
			if err != nil {
				return nil, err
			}
			if sameAddresses(k.d.Hosts, hosts) {
				k.d.Hosts = hosts
				return k, nil
			}
		}
		c.held = nil
	}
	d, err := c.store.Desired(ctx)
	if err != nil {
		return nil, err
	}
	k := &heldState{d: &d}
	allocs, tunnels, drop, problems := allocate(&d)
	k.links = problems
	if len(allocs)+len(tunnels)+len(drop) > 0 {
		if err := c.store.SaveAllocations(ctx, allocs, tunnels, drop); err != nil {
			return nil, err
		}
	}
	mgmt, problems := allocateMgmt(&d)
	k.mgmt = problems
	if !mgmt.Empty() {
		if err := c.store.SaveMgmt(ctx, mgmt); err != nil {
			return nil, err
		}
	}
	k.decls = hostDeclarations(d, nil)
	digestAll(k.decls)
	// Saving allocations moved the revision past d's: the next round
	// reads them back rather than trust this copy.
	c.held = k
	return k, nil
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
