package agent

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/wire"
)

// watchedFake is a fake container runtime that reports events: the test
// sends them, or cuts the stream.
type watchedFake struct {
	*runtimetest.Fake
	events  chan runtime.Event
	cut     chan struct{}
	watches atomic.Int32
}

func (w *watchedFake) Watch(ctx context.Context, changed func(runtime.Event)) error {
	w.watches.Add(1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.cut:
			return errors.New("the stream ended")
		case e := <-w.events:
			changed(e)
		}
	}
}

// TestNodeEvents: a runtime's events about a node the agent holds repair
// it, counted under the event's cause, with its exec commands run again;
// events about other nodes do not; a broken stream is watched again and
// forces a repair.
func TestNodeEvents(t *testing.T) {
	t.Parallel()
	images := &watchedFake{Fake: runtimetest.New(), events: make(chan runtime.Event), cut: make(chan struct{})}
	a, err := New(testConfig(t), fabrictest.New(), runtime.Set{Plain: runtimetest.New(), Images: images}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
		}
	}
	waitFor("restored", a.ready.Load)
	if _, err := a.conv.declareHost(ctx, wire.HostDeclaration{Generation: gen(1), Nodes: []wire.DeclaredNode{
		{LabID: "lab-1", Name: "c1", Image: "busybox", Exec: []string{"ip addr add 10.0.0.1/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 100}}},
	}}); err != nil {
		t.Fatal(err)
	}
	const held = "node lab-1/c1 eth1"
	if got := images.Dump(); got != held {
		t.Fatalf("declared: %q, want %q", got, held)
	}
	repairs := func(cause string) float64 { return repairCount(t, a.m, cause) }

	images.Kill("lab-1", "c1")
	images.events <- runtime.Event{Lab: "lab-1", Node: "other", Cause: "container died"}
	time.Sleep(20 * testConfig(t).Debounce) // what a repair would take; none must come
	if got := images.Dump(); got != "" {
		t.Fatalf("an event of a node the agent does not hold repaired: %q", got)
	}
	images.events <- runtime.Event{Lab: "lab-1", Node: "c1", Cause: "container died"}
	// The repair is counted once it is done, after the node is made again.
	waitFor("c1 made again and the repair counted", func() bool { return images.Dump() == held && repairs("container died") == 1 })
	if execs := images.Execs(); len(execs) != 2 {
		t.Errorf("execs %v: want c1's twice, once made and once made again", execs)
	}

	images.Kill("lab-1", "c1")
	images.cut <- struct{}{}
	waitFor("c1 made again after the stream broke, the repair counted", func() bool { return images.Dump() == held && repairs("resync") == 1 })
	waitFor("watched again", func() bool { return images.watches.Load() == 2 })
}

// TestDriftTake: a burst is one repair, named by its least cause, and a
// fabric event is relevant only by a name the agent holds.
func TestDriftTake(t *testing.T) {
	t.Parallel()
	d := newDrift()
	if g := d.take(); g.cause != "" {
		t.Fatalf("empty drift took %+v", g)
	}
	d.nodeEvent(runtime.Event{Lab: "l", Node: "c1", Cause: "container restarted"})
	d.nodeEvent(runtime.Event{Lab: "l", Node: "c1", Cause: "container died"})
	d.fabricEvent(fabric.Event{Kind: fabric.DeviceChanged, Name: "nlp1"})
	g := d.take()
	if g.cause != "container died" || len(g.nodes) != 1 || strings.Join(g.names, ",") != "nlp1" || g.forced {
		t.Errorf("took %+v: want cause container died, one node, nlp1, not forced", g)
	}
	if g := d.take(); g.cause != "" {
		t.Errorf("took again %+v: want nothing", g)
	}
	c, _ := newTestConverger(t)
	if c.relevant(gathered{cause: "x", names: []string{"nlp1"}, nodes: []nodeKey{{"l", "c1"}}}) {
		t.Error("relevant with nothing held")
	}
	d.force("resync")
	if g := d.take(); !c.relevant(g) || g.cause != "resync" {
		t.Errorf("forced %+v: want relevant, cause resync", g)
	}
}

// TestDriftCovered: events about a held tunnel call for a repair until a
// convergence that succeeded whole has observed the host after them; later
// events call for one again.
func TestDriftCovered(t *testing.T) {
	t.Parallel()
	c, _ := newTestConverger(t)
	t1 := tun("lab-1", 1)
	changed := fabric.Event{Kind: fabric.DeviceChanged, Name: t1.PortName}
	tests := []struct {
		name     string
		before   func() // between the event and the take
		relevant bool
	}{
		{"recorded before the declaration", func() { declareT(t, c, t1) }, false},
		{"recorded after it", func() {}, true},
		{"recorded before a repair", func() {
			if err := c.repair(t.Context(), "test"); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		c.drift.fabricEvent(changed)
		tt.before()
		if got := c.relevant(c.drift.take()); got != tt.relevant {
			t.Errorf("%s: relevant %v, want %v", tt.name, got, tt.relevant)
		}
	}
}

// repairCount returns the repairs m counted under cause.
func repairCount(t *testing.T, m *metrics, cause string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if f.GetName() == "netloom_agent_repairs_total" && m.GetLabel()[0].GetValue() == cause {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRepairNamedByDrift: a repair is counted under the least cause of the
// events recorded before it observed the host, not only of those that
// called for it: a repair already on its way when a container is killed
// repairs the kill, and the repair the kill wakes finds nothing.
func TestRepairNamedByDrift(t *testing.T) {
	t.Parallel()
	c, f := newTestConverger(t)
	t1 := tun("lab-1", 1)
	declareT(t, c, t1)
	tests := []struct {
		name    string
		pending []string // causes recorded before the repair observes
		want    string
	}{
		{"no events meanwhile", nil, "health"},
		{"a lesser cause meanwhile", []string{"container died"}, "container died"},
		{"a greater cause meanwhile", []string{"resync"}, "health"},
	}
	for _, tt := range tests {
		f.DeletePort(t1.PortName)
		for _, cause := range tt.pending {
			c.drift.force(cause)
		}
		before := repairCount(t, c.m, tt.want)
		if err := c.repair(t.Context(), "health"); err != nil {
			t.Fatal(err)
		}
		if got := repairCount(t, c.m, tt.want) - before; got != 1 {
			t.Errorf("%s: %v repairs counted under %q, want 1", tt.name, got, tt.want)
		}
		c.drift.take()
	}
}
