package agent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/runtime"
)

// drift gathers the events that arrive between two repairs, from the fabric
// driver's watch and from the runtimes' (container events). The watches'
// callbacks only record here: they never wait for a convergence.
type drift struct {
	wake chan struct{}

	mu sync.Mutex
	// mu guards the following.
	causes map[string]bool  // every event's cause; a repair names the least
	names  map[string]bool  // ports and devices the fabric events named
	nodes  map[nodeKey]bool // nodes the runtime events named
	forced bool             // a watch broke: repair whatever the events named
	seq    uint64           // counts every event recorded
}

func newDrift() *drift {
	return &drift{wake: make(chan struct{}, 1), causes: map[string]bool{}, names: map[string]bool{}, nodes: map[nodeKey]bool{}}
}

func (d *drift) record(fn func()) {
	d.mu.Lock()
	fn()
	d.seq++
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// fabricEvent records a port or device event.
func (d *drift) fabricEvent(e fabric.Event) {
	d.record(func() { d.causes[string(e.Kind)], d.names[e.Name] = true, true })
}

// nodeEvent records a runtime's event about one node.
func (d *drift) nodeEvent(e runtime.Event) {
	d.record(func() { d.causes[e.Cause], d.nodes[nodeKey{e.Lab, e.Node}] = true, true })
}

// force asks for a repair whatever the agent holds: events may have been
// lost.
func (d *drift) force(cause string) {
	d.record(func() { d.causes[cause], d.forced = true, true })
}

// mark returns how many events were recorded so far, and the least cause
// among those not yet taken: what a convergence that observes the host now
// covers.
func (d *drift) mark() (seq uint64, least string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq, d.least()
}

// least is the least cause recorded, or "" if none. The caller holds mu.
func (d *drift) least() string {
	if len(d.causes) == 0 {
		return ""
	}
	return slices.Min(slices.Collect(maps.Keys(d.causes)))
}

// gathered is what drift held at one take.
type gathered struct {
	cause  string // "" when nothing was recorded
	names  []string
	nodes  []nodeKey
	forced bool
	last   uint64 // the sequence number of the last event taken
}

// take returns what was recorded and clears it. The cause is the least of
// the causes, so that a burst of events is counted alike every time.
func (d *drift) take() gathered {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.causes) == 0 {
		return gathered{}
	}
	g := gathered{
		cause: d.least(),
		names: slices.Collect(maps.Keys(d.names)), nodes: slices.Collect(maps.Keys(d.nodes)), forced: d.forced, last: d.seq,
	}
	clear(d.causes)
	clear(d.names)
	clear(d.nodes)
	d.forced = false
	return g
}

// relevant reports whether what was gathered concerns something the agent
// holds and no convergence has seen since: a watch that broke always does.
// A convergence that observed the host after the events were recorded
// planned from what they changed, so a repair for them would find nothing
// more to do: most often they are the echoes of a declaration's own
// changes, seen by the declaration that follows it.
func (c *converger) relevant(g gathered) bool {
	if g.forced {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g.last <= c.covered {
		return false
	}
	for _, n := range g.names {
		if c.names[n] {
			return true
		}
	}
	for _, k := range g.nodes {
		if _, held := c.held.nodes[k]; held {
			return true
		}
	}
	return false
}

// watchers returns the runtimes of rt that report events: rt itself, or
// those of a runtime.Set.
func watchers(rt runtime.Runtime) []runtime.Watcher {
	if s, ok := rt.(interface{ Watchers() []runtime.Watcher }); ok {
		return s.Watchers()
	}
	if w, ok := rt.(runtime.Watcher); ok {
		return []runtime.Watcher{w}
	}
	return nil
}

// watchRuntime feeds a runtime's events into d until ctx ends. A broken
// stream (the daemon stopped or restarted) is watched again after a pause
// that grows while it keeps breaking, and forces a repair, since events may
// have been lost meanwhile.
func (a *Agent) watchRuntime(ctx context.Context, w runtime.Watcher, d *drift) {
	const first, most = 100 * time.Millisecond, 30 * time.Second
	pause := first
	for {
		began := time.Now()
		err := w.Watch(ctx, d.nodeEvent)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch returned before its end")
		}
		if time.Since(began) > time.Minute {
			pause = first // it had been working
		}
		a.log.Warn("node watch interrupted; resyncing", "err", err, "retry_in", pause)
		d.force("resync")
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, most)
	}
}
