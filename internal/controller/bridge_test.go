package controller

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// withBridge adds to d a node "br" of kind bridge placed on host.
func withBridge(d store.Desired, host string) store.Desired {
	d.Nodes = append(d.Nodes, store.LabNode{Lab: "lab1", Node: store.Node{Name: "br", Kind: "bridge", PlacedOn: host}})
	return d
}

// tunnelRow is the tunnel row of ls between hosts a and b.
func tunnelRow(ls store.LinkState, vni int, a, b string) store.TunnelRow {
	ip := map[string]string{"hostA": "10.0.0.1", "hostB": "10.0.0.2", "hostC": "10.0.0.3"}
	return store.TunnelRow{LinkStateID: ls.Name, LabID: "lab1", VNI: vni, AgentA: a, IPA: ip[a], AgentB: b, IPB: ip[b], PortName: ident.PortName("lab1", ls.Name)}
}

// TestAllocateBridge covers a bridge's one tag: shared by its members on
// its host, carried by its tunnel ends to members on other hosts, held once
// and never handed to another link, and fresh for all its sides when it
// moves.
func TestAllocateBridge(t *testing.T) {
	t.Parallel()
	m1, m2, m3 := link("r1:eth1", "br:eth1"), link("br:eth2", "r2:eth1"), link("r3:eth1", "br:eth3")
	plain := link("r1:eth2", "r2:eth2")
	v1, v2, v3 := int(ident.VNI("lab1", m1.Name)), int(ident.VNI("lab1", m2.Name)), int(ident.VNI("lab1", m3.Name))
	aab := map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}
	tests := []allocCase{
		{"new: members on the bridge's host share its tag, one on another host tunnels to it; the tag is not another link's",
			withBridge(desired(store.LabStarting, aab, m1, m2, m3, plain), "hostA"),
			[]store.Allocation{
				{LinkStateID: m1.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2050, MTU: 1500},
				{LinkStateID: m2.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2050, MTU: 1500},
				{LinkStateID: m3.Name, SourceHost: "hostB", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2050, VNI: &v3, MTU: 1450},
				{LinkStateID: plain.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2051, TargetTag: 2051, MTU: 1500},
			},
			[]store.TunnelRow{tunnelRow(m3, v3, "hostB", "hostA")}, nil},
		{"placed: the shared tag is held once, a new link gets the next",
			withBridge(desired(store.LabRunning, aab, placedLink(m1, "hostA", 2060, "hostA", 2060, nil), placedLink(m2, "hostA", 2060, "hostA", 2060, nil),
				placedLink(m3, "hostB", 2050, "hostA", 2060, &v3), plain), "hostA"),
			[]store.Allocation{{LinkStateID: plain.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2050, MTU: 1500}},
			nil, nil},
		{"a new member on the bridge's host takes the bridge's tag",
			withBridge(desired(store.LabRunning, aab, placedLink(m3, "hostB", 2050, "hostA", 2060, &v3), m1), "hostA"),
			[]store.Allocation{{LinkStateID: m1.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2060, TargetTag: 2060, MTU: 1500}},
			nil, nil},
		{"the bridge moves: a fresh tag on its new host for all its sides; members left behind get tags of their own",
			withBridge(desired(store.LabRunning, aab, placedLink(m1, "hostA", 2060, "hostA", 2060, nil), placedLink(m2, "hostA", 2060, "hostA", 2060, nil),
				placedLink(m3, "hostB", 2050, "hostA", 2060, &v3)), "hostC"),
			[]store.Allocation{
				{LinkStateID: m1.Name, SourceHost: "hostA", TargetHost: "hostC", SourceTag: 2050, TargetTag: 2050, VNI: &v1, MTU: 1450},
				{LinkStateID: m2.Name, SourceHost: "hostC", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2051, VNI: &v2, MTU: 1450},
				{LinkStateID: m3.Name, SourceHost: "hostB", TargetHost: "hostC", SourceTag: 2050, TargetTag: 2050, MTU: 1450},
			},
			[]store.TunnelRow{tunnelRow(m1, v1, "hostA", "hostC"), tunnelRow(m2, v2, "hostC", "hostA"), tunnelRow(m3, v3, "hostB", "hostC")}, nil},
		{"the bridge moves to a member's host: that member shares the new tag (its old one, free once it let go), its tunnel row goes",
			withBridge(desired(store.LabRunning, aab, placedLink(m1, "hostA", 2060, "hostA", 2060, nil), placedLink(m3, "hostB", 2050, "hostA", 2060, &v3)), "hostB"),
			[]store.Allocation{
				{LinkStateID: m1.Name, SourceHost: "hostA", TargetHost: "hostB", SourceTag: 2050, TargetTag: 2050, VNI: &v1, MTU: 1450},
				{LinkStateID: m3.Name, SourceHost: "hostB", TargetHost: "hostB", SourceTag: 2050, TargetTag: 2050, MTU: 1500},
			},
			[]store.TunnelRow{tunnelRow(m1, v1, "hostA", "hostB")}, []string{m3.Name}},
		{"a member moves off the bridge's host: its side gets a tag there, the others keep the bridge's",
			withBridge(desired(store.LabRunning, map[string]string{"r1": "hostB", "r2": "hostA", "r3": "hostB"},
				placedLink(m1, "hostA", 2060, "hostA", 2060, nil), placedLink(m2, "hostA", 2060, "hostA", 2060, nil), placedLink(m3, "hostB", 2050, "hostA", 2060, &v3)), "hostA"),
			[]store.Allocation{{LinkStateID: m1.Name, SourceHost: "hostB", TargetHost: "hostA", SourceTag: 2051, TargetTag: 2060, VNI: &v1, MTU: 1450}},
			[]store.TunnelRow{tunnelRow(m1, v1, "hostB", "hostA")}, nil},
	}
	runAllocCases(t, tests)
}

// TestAllocateBridgeToBridge refuses a link between two bridges, should
// one reach the controller past the lab file's check.
func TestAllocateBridgeToBridge(t *testing.T) {
	t.Parallel()
	d := withBridge(desired(store.LabStarting, nil, link("br:eth1", "b2:eth1")), "hostA")
	d.Nodes = append(d.Nodes, store.LabNode{Lab: "lab1", Node: store.Node{Name: "b2", Kind: "ovs-bridge", PlacedOn: "hostB"}})
	allocs, _, _, problems := allocate(&d)
	if len(allocs) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "a link between two bridges") {
		t.Errorf("allocations %+v, problems %v; want the link refused", allocs, problems)
	}
}

// TestHostDeclarationsBridge declares no node and no interface for a
// bridge: its members' interfaces carry its tag, and its host holds the
// tunnel end of each member on another host, with the bridge's tag.
func TestHostDeclarationsBridge(t *testing.T) {
	t.Parallel()
	vni := 5000
	m1 := placedLink(link("r1:eth1", "br:eth1"), "hostA", 2060, "hostA", 2060, nil)
	m3 := placedLink(link("r3:eth1", "br:eth3"), "hostB", 2050, "hostA", 2060, &vni)
	d := withBridge(desired(store.LabRunning, map[string]string{"r1": "hostA", "r3": "hostB"}, m1, m3), "hostA")
	port := ident.PortName("lab1", m3.Name)
	labs := []string{"lab1"}
	want := map[string]*wire.HostDeclaration{
		"hostA": {Nodes: []wire.DeclaredNode{{LabID: "lab1", Name: "r1", Kind: "linux", Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2060, MTU: 1500}}}},
			Tunnels:      []wire.DeclaredTunnel{{LinkID: m3.Name, LabID: "lab1", VNI: 5000, LocalIP: "10.0.0.1", RemoteIP: "10.0.0.2", ExpectedVLAN: 2060, PortName: port, MTU: 1450}},
			DeclaredLabs: labs},
		"hostB": {Nodes: []wire.DeclaredNode{{LabID: "lab1", Name: "r3", Kind: "linux", Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2050, MTU: 1450}}}},
			Tunnels:      []wire.DeclaredTunnel{{LinkID: m3.Name, LabID: "lab1", VNI: 5000, LocalIP: "10.0.0.2", RemoteIP: "10.0.0.1", ExpectedVLAN: 2050, PortName: port, MTU: 1450}},
			DeclaredLabs: labs},
		"hostC": {Nodes: []wire.DeclaredNode{}, Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: labs},
	}
	if diff := cmp.Diff(want, hostDeclarations(d, nil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestObserveBridge: a bridge's sides and the bridge itself are up once its
// host answered and its tunnel ends converged; a failed tunnel end shows on
// the bridge and on the link.
func TestObserveBridge(t *testing.T) {
	t.Parallel()
	vni := 5000
	m1 := placedLink(link("r1:eth1", "br:eth1"), "hostA", 2060, "hostA", 2060, nil)
	m3 := placedLink(link("r3:eth1", "br:eth3"), "hostB", 2050, "hostA", 2060, &vni)
	boom := "ovsdb: constraint violation"
	for _, tt := range []struct {
		name             string
		tunnelA          wire.TunnelResult
		wantBridge, want string
	}{
		{"converged", wire.TunnelResult{LabID: "lab1", LinkID: m3.Name, Status: wire.StatusConverged}, store.LinkUp, store.LinkUp},
		{"hostA's tunnel end failed", wire.TunnelResult{LabID: "lab1", LinkID: m3.Name, Status: wire.StatusError, Error: &boom}, store.LinkError, store.LinkError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := withBridge(desired(store.LabStarting, map[string]string{"r1": "hostA", "r3": "hostB"}, m1, m3), "hostA")
			a, b := newHostAnswer("hostA"), newHostAnswer("hostB")
			a.nodes[nodeKey{"lab1", "r1"}] = wire.NodeStatus{LabID: "lab1", Name: "r1", Status: wire.StatusConverged}
			a.ifaces[ifaceKey{"lab1", "r1", "eth1"}] = wire.InterfaceStatus{LabID: "lab1", Node: "r1", Interface: "eth1", Status: wire.StatusConverged}
			a.tunnels[linkKey{"lab1", m3.Name}] = tt.tunnelA
			b.nodes[nodeKey{"lab1", "r3"}] = wire.NodeStatus{LabID: "lab1", Name: "r3", Status: wire.StatusConverged}
			b.ifaces[ifaceKey{"lab1", "r3", "eth1"}] = wire.InterfaceStatus{LabID: "lab1", Node: "r3", Interface: "eth1", Status: wire.StatusConverged}
			b.tunnels[linkKey{"lab1", m3.Name}] = wire.TunnelResult{LabID: "lab1", LinkID: m3.Name, Status: wire.StatusConverged}
			observe(&d, map[string]*hostAnswer{"hostA": a, "hostB": b}, nil, nil)
			br := d.Nodes[3]
			if br.Name != "br" || br.Status != tt.wantBridge || br.RuntimeID != "" {
				t.Errorf("bridge %+v, want %s", br, tt.wantBridge)
			}
			if ls := d.Links[0]; ls.ActualState != store.LinkUp {
				t.Errorf("same-host member's link %q %q, want up", ls.ActualState, ls.Error)
			}
			if ls := d.Links[1]; ls.ActualState != tt.want {
				t.Errorf("cross-host member's link %q %q, want %s", ls.ActualState, ls.Error, tt.want)
			}
		})
	}
}
