package controller

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// cycleQueries builds a lab of n links, half same-host and half cross-host,
// deployed on two agent doubles, runs two full cycles and returns the
// statements the second one sent.
func cycleQueries(t *testing.T, n int) int64 {
	t.Helper()
	c, _ := newTestController(t, time.Minute)
	ctx := t.Context()
	agents := map[string]*agenttest.Converged{"hostA": {}, "hostB": {}}
	for name, f := range agents {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		if err := c.store.RegisterHost(ctx, store.Host{Name: name, Address: srv.URL, DataIP: "10.77.0." + name[4:]}); err != nil {
			t.Fatal(err)
		}
	}
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
	if err := c.store.SetLabState(ctx, "big", store.LabRunning, ""); err != nil {
		t.Fatal(err)
	}
	v, err := c.store.LabView(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	var maps []store.Mapping
	for i, ls := range v.Links {
		src, dst := placement[ls.SourceNode], placement[ls.TargetNode]
		if err := c.store.SetLinkCreating(ctx, ls.ID, src, dst); err != nil {
			t.Fatal(err)
		}
		tag := 2050 + i%1900
		if src == dst {
			err = c.store.SetSameHostUp(ctx, ls.ID, tag)
		} else {
			err = c.store.SetCrossHostUp(ctx, store.CrossHostUp{LinkStateID: ls.ID, LabID: "big", LinkName: ls.Name, VNI: 100000 + i,
				SourceTag: tag, TargetTag: tag, SourceHost: src, SourceIP: "10.77.0.1", TargetHost: dst, TargetIP: "10.77.0.2"})
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct{ node, iface, host string }{{ls.SourceNode, ls.SourceIface, src}, {ls.TargetNode, ls.TargetIface, dst}} {
			port := ident.HostPortName("big", e.node, e.iface)
			maps = append(maps, store.Mapping{Node: e.node, Iface: e.iface, OVSPort: port, Tag: tag})
			agents[e.host].AddPort("big", wire.PortState{NodeName: e.node, InterfaceName: e.iface, OVSPortName: port, VLANTag: tag, Carrier: "on"})
		}
	}
	if err := c.store.UpsertMappings(ctx, "big", maps); err != nil {
		t.Fatal(err)
	}
	c.cycle(ctx, 1) // the first cycle sets the attached flags
	before := c.store.Queries()
	c.cycle(ctx, 1)
	for name, a := range agents {
		if a.Calls() < 4 { // two cycles: declare-state, port-state, and more
			t.Fatalf("agent %s got %d calls: the cycle did not converge", name, a.Calls())
		}
	}
	return c.store.Queries() - before
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
