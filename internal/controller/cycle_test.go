package controller

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
)

// cycleQueries builds a lab of n links, half same-host and half cross-host,
// on two agent doubles, runs two full cycles and returns the statements the
// second one sent.
func cycleQueries(t *testing.T, n int) int64 {
	t.Helper()
	c, _ := newTestController(t, time.Minute)
	ctx := t.Context()
	agents := map[string]*agenttest.Converged{"hostA": {}, "hostB": {}}
	serveHosts(t, c, map[string]http.Handler{"hostA": agents["hostA"], "hostB": agents["hostB"]})
	lab := topology.Lab{Name: "big"}
	placement := map[string]string{}
	for i := range n {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		lab.Nodes = append(lab.Nodes, topology.Node{Name: a, Kind: "linux"}, topology.Node{Name: b, Kind: "linux"})
		lab.Links = append(lab.Links, topology.Link{A: topology.Endpoint{Node: a, Iface: "eth1"}, B: topology.Endpoint{Node: b, Iface: "eth1"}})
		placement[a] = "hostA"
		placement[b] = "hostA"
		if i%2 == 1 {
			placement[b] = "hostB"
		}
	}
	if _, err := c.store.CreateLab(ctx, lab); err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetPlacements(ctx, "big", placement); err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetLabState(ctx, "big", store.LabStarting, ""); err != nil {
		t.Fatal(err)
	}
	c.cycle(ctx, 1) // the first cycle allocates and records the states
	before := c.store.Queries()
	c.cycle(ctx, 1)
	sent := c.store.Queries() - before
	for name, a := range agents {
		if len(a.Declared()) != 2 {
			t.Fatalf("agent %s got %d declarations, want one per cycle", name, len(a.Declared()))
		}
	}
	if v, err := c.store.LabView(ctx, "big"); err != nil || v.State != store.LabRunning || v.Progress.LinksUp != n {
		t.Fatalf("lab %s, %+v, %v: want running with every link up", v.State, v.Progress, err)
	}
	return sent
}

// TestCycleQueries shows that a reconcile cycle sends the same number of
// statements to the database whatever the number of links.
func TestCycleQueries(t *testing.T) {
	t.Parallel()
	counts := map[int]int64{}
	for _, n := range []int{10, 100, 1000} {
		counts[n] = cycleQueries(t, n)
	}
	t.Logf("statements per cycle: %v", counts)
	if counts[10] != counts[100] || counts[100] != counts[1000] || counts[10] == 0 {
		t.Fatalf("statements per cycle grow with links: %v", counts)
	}
}
