package controller

import (
	"context"
	"slices"

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
	for _, decl := range k.decls {
		decl.Digest = decl.Sum()
	}
	// Saving allocations moved the revision past d's: the next round
	// reads them back rather than trust this copy.
	c.held = k
	return k, nil
}

// sameAddresses reports whether two readings of the hosts agree on what
// allocations and declarations are built from: the hosts, their data
// addresses and their underlay MTUs.
func sameAddresses(a, b []store.Host) bool {
	return slices.EqualFunc(a, b, func(x, y store.Host) bool {
		return x.Name == y.Name && x.DataIP == y.DataIP && x.UnderlayMTU == y.UnderlayMTU
	})
}
