// Package vlan allocates the access tags of one host bridge: isolated tags
// (100–2049) for node ports that belong to no link, linked tags (2050–4000)
// for the ports of a link.
//
// The agent holds exactly one Allocator per bridge, seeded from the tags the
// bridge holds when the agent starts; every allocation goes through its lock.
// The original had four allocators that coordinated only by re-reading the
// bridge, and two of them could hand out the same tag (W-7).
//
// Design notes: the lowest free tag is handed out, falling back to the other
// range when one is exhausted, as the original does; that keeps tags small
// and predictable for an engineer reading `ovs-vsctl show`.
package vlan

import (
	"errors"
	"fmt"
	"sync"

	"github.com/netloom/netloom/internal/ident"
)

// Range is an inclusive range of tags.
type Range struct{ Lo, Hi int }

// The two ranges of a bridge, as ident defines them.
var (
	Isolated = Range{ident.IsolatedTagMin, ident.IsolatedTagMax}
	Linked   = Range{ident.LinkedTagMin, ident.LinkedTagMax}
)

// Contains reports whether tag lies in r.
func (r Range) Contains(tag int) bool { return tag >= r.Lo && tag <= r.Hi }

// ErrExhausted reports that no tag is free in either range.
var ErrExhausted = errors.New("no free VLAN tag")

// Allocator hands out the tags of one bridge.
type Allocator struct {
	mu sync.Mutex
	// mu guards the following.
	used map[int]bool
}

// New returns an allocator that treats the tags in use as taken.
func New(inUse []int) *Allocator {
	a := &Allocator{used: map[int]bool{}}
	for _, t := range inUse {
		if t > 0 {
			a.used[t] = true
		}
	}
	return a
}

// Allocate takes the lowest free tag of r, or of the other range when r is
// full.
func (a *Allocator) Allocate(r Range) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	other := Isolated
	if r == Isolated {
		other = Linked
	}
	for _, rr := range []Range{r, other} {
		for t := rr.Lo; t <= rr.Hi; t++ {
			if !a.used[t] {
				a.used[t] = true
				return t, nil
			}
		}
	}
	return 0, fmt.Errorf("allocate from %d-%d: %w", r.Lo, r.Hi, ErrExhausted)
}

// Reserve marks a tag taken, for a tag the controller or the bridge already
// uses. It reports whether the tag was free.
func (a *Allocator) Reserve(tag int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.used[tag]
	a.used[tag] = true
	return !was
}

// Release frees a tag; releasing a free tag does nothing.
func (a *Allocator) Release(tag int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.used, tag)
}

// Sync makes exactly the tags in inUse taken: what the agent keeps and the
// bridge holds, so that tags of deleted ports return to the pool.
func (a *Allocator) Sync(inUse []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.used)
	for _, t := range inUse {
		if t > 0 {
			a.used[t] = true
		}
	}
}

// InUse reports whether tag is taken.
func (a *Allocator) InUse(tag int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used[tag]
}
