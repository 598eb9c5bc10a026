package controller

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

func tag(n int) *int { return &n }

// desired builds a desired state: hosts A (10.0.0.1), B (10.0.0.2) and C
// (10.0.0.3); lab "lab1" in state with nodes placed as given (node → host)
// and links "node:iface" pairs; a link's sides, tags and VNI as given in
// its LinkState fields are kept.
func desired(state string, placed map[string]string, links ...store.LinkState) store.Desired {
	d := store.Desired{
		Hosts: []store.Host{{Name: "hostA", DataIP: "10.0.0.1"}, {Name: "hostB", DataIP: "10.0.0.2"}, {Name: "hostC", DataIP: "10.0.0.3"}},
		Labs:  []store.Lab{{ID: "lab1", Name: "lab1", State: state}},
	}
	for _, n := range []string{"r1", "r2", "r3"} {
		d.Nodes = append(d.Nodes, store.LabNode{Lab: "lab1", Node: store.Node{Name: n, Kind: "linux", PlacedOn: placed[n]}})
	}
	for _, ls := range links {
		ls.LabID, ls.ID = "lab1", ls.Name
		d.Links = append(d.Links, ls)
	}
	return d
}

// link is a link state between r<a>:eth<i> and r<b>:eth<j>.
func link(src, dst string) store.LinkState {
	return store.LinkState{Name: ident.LinkName(src, dst), SourceNode: src[:2], SourceIface: src[3:], TargetNode: dst[:2], TargetIface: dst[3:], DesiredState: "up"}
}

func placedLink(ls store.LinkState, sh string, st int, th string, tt int, vni *int) store.LinkState {
	ls.SourceHost, ls.SourceTag, ls.TargetHost, ls.TargetTag, ls.VNI, ls.CrossHost = sh, tag(st), th, tag(tt), vni, sh != th
	ls.MTU = tag(1450)
	if sh == th {
		ls.VLANTag, ls.MTU = tag(st), tag(1500)
	}
	if sh != th && vni != nil {
		ls.Tunnel = &store.Tunnel{VNI: *vni, AgentA: sh, IPA: map[string]string{"hostA": "10.0.0.1", "hostB": "10.0.0.2", "hostC": "10.0.0.3"}[sh],
			AgentB: th, IPB: map[string]string{"hostA": "10.0.0.1", "hostB": "10.0.0.2", "hostC": "10.0.0.3"}[th], Status: "active",
			PortName: ident.PortName("lab1", ls.Name)}
	}
	return ls
}

// allocCase is an allocation from a desired state: what is stored, the
// tunnel rows made and dropped.
type allocCase struct {
	name        string
	d           store.Desired
	want        []store.Allocation
	wantTunnels []store.TunnelRow
	wantDrop    []string
}

// runAllocCases allocates each case's desired state, compares, and checks
// that allocating again changes nothing.
func runAllocCases(t *testing.T, tests []allocCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := tt.d
			allocs, tunnels, drop, problems := allocate(&d)
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			if diff := cmp.Diff(tt.want, allocs); diff != "" {
				t.Errorf("allocations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTunnels, tunnels); diff != "" {
				t.Errorf("tunnel rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDrop, drop); diff != "" {
				t.Errorf("dropped tunnels (-want +got):\n%s", diff)
			}
			again, tunnels, drop, _ := allocate(&d)
			if len(again)+len(tunnels)+len(drop) > 0 {
				t.Errorf("a second pass changes more: %+v %+v %v", again, tunnels, drop)
			}
		})
	}
}

// TestAllocate covers tags per host and side, VNIs and tunnel rows.
func TestAllocate(t *testing.T) {
	t.Parallel()
	same, cross := link("r1:eth1", "r2:eth1"), link("r2:eth2", "r3:eth1")
	first := int(ident.VNI("lab1", cross.Name))
	abc := map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}
	tests := []allocCase{
		{"new links: one tag for a same-host link, one per side and a VNI for a cross-host one",
			desired(store.LabStarting, abc, same, cross),
			[]store.Allocation{
				{LinkStateID: same.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2050, MTU: 1500},
				{LinkStateID: cross.Name, SourceHost: "hostA", TargetHost: "hostB", SourceTag: 2051, TargetTag: 2050, VNI: &first, MTU: 1450},
			},
			[]store.TunnelRow{{LinkStateID: cross.Name, LabID: "lab1", VNI: first, AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.0.2", PortName: ident.PortName("lab1", cross.Name)}},
			nil},
		{"nothing moved: nothing changes",
			desired(store.LabRunning, abc, placedLink(same, "hostA", 2050, "hostA", 2050, nil), placedLink(cross, "hostA", 2051, "hostB", 2050, &first)),
			nil, nil, nil},
		{"a lab that does not run gets nothing",
			desired(store.LabStopped, abc, same, cross), nil, nil, nil},
		{"tags are unique per host: held tags are skipped",
			desired(store.LabStarting, abc, placedLink(same, "hostA", 2050, "hostA", 2050, nil), cross),
			[]store.Allocation{{LinkStateID: cross.Name, SourceHost: "hostA", TargetHost: "hostB", SourceTag: 2051, TargetTag: 2050, VNI: &first, MTU: 1450}},
			[]store.TunnelRow{{LinkStateID: cross.Name, LabID: "lab1", VNI: first, AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.0.2", PortName: ident.PortName("lab1", cross.Name)}},
			nil},
		{"a side that moved gets a fresh tag on its new host, the other keeps its own",
			desired(store.LabStarting, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostC"}, placedLink(cross, "hostA", 2077, "hostB", 2060, &first)),
			[]store.Allocation{{LinkStateID: cross.Name, SourceHost: "hostA", TargetHost: "hostC", SourceTag: 2077, TargetTag: 2050, MTU: 1450}},
			[]store.TunnelRow{{LinkStateID: cross.Name, LabID: "lab1", VNI: first, AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostC", IPB: "10.0.0.3", PortName: ident.PortName("lab1", cross.Name)}},
			nil},
		{"a cross-host link that becomes same-host shares the tag of the side that stayed; its tunnel row goes",
			desired(store.LabStarting, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostA"}, placedLink(cross, "hostA", 2077, "hostB", 2060, &first)),
			[]store.Allocation{{LinkStateID: cross.Name, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2077, TargetTag: 2077, MTU: 1500}},
			nil, []string{cross.Name}},
		{"a same-host link split by a move keeps the tag on the side that stayed",
			desired(store.LabStarting, map[string]string{"r1": "hostA", "r2": "hostB"}, placedLink(same, "hostA", 2050, "hostA", 2050, nil)),
			[]store.Allocation{{LinkStateID: same.Name, SourceHost: "hostA", TargetHost: "hostB", SourceTag: 2050, TargetTag: 2050, VNI: tag(int(ident.VNI("lab1", same.Name))), MTU: 1450}},
			[]store.TunnelRow{{LinkStateID: same.Name, LabID: "lab1", VNI: int(ident.VNI("lab1", same.Name)), AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.0.2", PortName: ident.PortName("lab1", same.Name)}},
			nil},
		{"a VNI another link holds is not taken (W-26)",
			desired(store.LabStarting, abc, placedLink(same, "hostA", 2050, "hostA", 2050, &first), cross),
			[]store.Allocation{{LinkStateID: cross.Name, SourceHost: "hostA", TargetHost: "hostB", SourceTag: 2051, TargetTag: 2050, VNI: tag(int(ident.VNIProbe("lab1", cross.Name, 1))), MTU: 1450}},
			[]store.TunnelRow{{LinkStateID: cross.Name, LabID: "lab1", VNI: int(ident.VNIProbe("lab1", cross.Name, 1)), AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.0.2", PortName: ident.PortName("lab1", cross.Name)}},
			nil},
		{"a host that re-registered with a new data address: the tunnel row follows, tags stay",
			func() store.Desired {
				d := desired(store.LabRunning, abc, placedLink(cross, "hostA", 2051, "hostB", 2050, &first))
				d.Hosts[1].DataIP = "10.0.9.2"
				return d
			}(),
			nil,
			[]store.TunnelRow{{LinkStateID: cross.Name, LabID: "lab1", VNI: first, AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.9.2", PortName: ident.PortName("lab1", cross.Name)}},
			nil},
	}
	runAllocCases(t, tests)
}

// TestAllocateExhausted fills a host's linked range: the link that finds no
// tag is reported, the others are allocated.
func TestAllocateExhausted(t *testing.T) {
	t.Parallel()
	d := desired(store.LabStarting, map[string]string{"r1": "hostA", "r2": "hostA"}, link("r1:eth1", "r2:eth1"))
	for tg := ident.LinkedTagMin; tg <= ident.LinkedTagMax; tg++ {
		d.Links = append(d.Links, store.LinkState{ID: "x", LabID: "other", SourceHost: "hostA", SourceTag: tag(tg)})
	}
	allocs, _, _, problems := allocate(&d)
	if len(allocs) != 0 || len(problems) != 1 {
		t.Fatalf("allocations %+v, problems %v; want one problem", allocs, problems)
	}
}

// TestHostDeclarations builds hosts' declarations from a desired state.
func TestHostDeclarations(t *testing.T) {
	t.Parallel()
	vni := 5000
	same := placedLink(link("r1:eth1", "r2:eth1"), "hostA", 2050, "hostA", 2050, nil)
	cross := placedLink(link("r2:eth2", "r3:eth1"), "hostA", 2051, "hostB", 2060, &vni)
	d := desired(store.LabRunning, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}, same, cross)
	d.Nodes[0].Exec = []string{"ip addr add 10.0.0.1/24 dev eth1"}
	d.Labs = append(d.Labs, store.Lab{ID: "gone", Name: "gone", State: store.LabStopping})
	d.Nodes = append(d.Nodes, store.LabNode{Lab: "gone", Node: store.Node{Name: "x", PlacedOn: "hostB"}})
	port := ident.PortName("lab1", cross.Name)
	labs := []string{"gone", "lab1"}
	want := map[string]*wire.HostDeclaration{
		"hostA": {Nodes: []wire.DeclaredNode{
			{LabID: "lab1", Name: "r1", Kind: "linux", Exec: []string{"ip addr add 10.0.0.1/24 dev eth1"}, Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2050, MTU: 1500}}},
			{LabID: "lab1", Name: "r2", Kind: "linux", Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2050, MTU: 1500}, {Name: "eth2", VLANTag: 2051, MTU: 1450}}},
		}, Tunnels: []wire.DeclaredTunnel{{LinkID: cross.Name, LabID: "lab1", VNI: 5000, LocalIP: "10.0.0.1", RemoteIP: "10.0.0.2", ExpectedVLAN: 2051, PortName: port, MTU: 1450}},
			DeclaredLabs: labs},
		"hostB": {Nodes: []wire.DeclaredNode{{LabID: "lab1", Name: "r3", Kind: "linux", Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2060, MTU: 1450}}}},
			Tunnels:      []wire.DeclaredTunnel{{LinkID: cross.Name, LabID: "lab1", VNI: 5000, LocalIP: "10.0.0.2", RemoteIP: "10.0.0.1", ExpectedVLAN: 2060, PortName: port, MTU: 1450}},
			DeclaredLabs: labs},
		"hostC": {Nodes: []wire.DeclaredNode{}, Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: labs},
	}
	if diff := cmp.Diff(want, hostDeclarations(d, nil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A node left out (made again) takes its interfaces and tunnel ends along.
	got := hostDeclarations(d, map[nodeKey]bool{{"lab1", "r3"}: true})
	if len(got["hostB"].Nodes) != 0 || len(got["hostB"].Tunnels) != 0 || len(got["hostA"].Tunnels) != 1 {
		t.Errorf("r3 omitted: %+v", got)
	}
}

// TestLinkState derives a link's state from its sides.
func TestLinkState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cross        bool
		s, t         string
		sWhy, tWhy   string
		want, wantIn string
		wantPartial  []string
	}{
		{"both up", true, "up", "up", "", "", "up", "", nil},
		{"same-host side failed", false, "error", "up", "hostA: r1:eth1: no such device", "", "error", "hostA: r1:eth1: no such device", nil},
		{"one side of a cross-host link up, the other failed: partial state on the host that holds it", true, "up", "error", "", "hostB: tunnel x: busy",
			"error", store.PartialStatePrefix + "hostB: tunnel x: busy", []string{"hostA"}},
		{"a side whose host is unreachable is unknown, never up", true, "up", "unknown", "", "hostB unreachable", "unknown", "hostB unreachable", nil},
		{"both failed", true, "error", "error", "hostA: a", "hostB: b", "error", "hostA: a; hostB: b", nil},
		{"a side not yet answered", true, "up", "", "", "", "pending", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := store.LinkState{CrossHost: tt.cross, SourceHost: "hostA", TargetHost: "hostB", SourceStatus: tt.s, TargetStatus: tt.t, SourceError: tt.sWhy, TargetError: tt.tWhy}
			state, why, partial := linkState(ls)
			if state != tt.want || why != tt.wantIn || !cmp.Equal(partial, tt.wantPartial) {
				t.Errorf("got %q %q %v; want %q %q %v", state, why, partial, tt.want, tt.wantIn, tt.wantPartial)
			}
		})
	}
}

// TestObserve turns answers into node, side, link and mapping states.
func TestObserve(t *testing.T) {
	t.Parallel()
	vni := 5000
	same := placedLink(link("r1:eth1", "r2:eth1"), "hostA", 2050, "hostA", 2050, nil)
	cross := placedLink(link("r2:eth2", "r3:eth1"), "hostA", 2051, "hostB", 2060, &vni)
	boom := "ovsdb: constraint violation"
	converged := func(lab, node, iface string, tag int) wire.InterfaceStatus {
		return wire.InterfaceStatus{LabID: lab, Node: node, Interface: iface, PortName: ident.HostPortName(lab, node, iface), Status: wire.StatusConverged, ActualVLAN: &tag}
	}
	a := newHostAnswer("hostA")
	a.nodes[nodeKey{"lab1", "r1"}] = wire.NodeStatus{LabID: "lab1", Name: "r1", Status: wire.StatusCreated, RuntimeID: "nl-lab1-r1"}
	a.nodes[nodeKey{"lab1", "r2"}] = wire.NodeStatus{LabID: "lab1", Name: "r2", Status: wire.StatusCreated,
		ExecFailures: []wire.ExecFailure{{Command: "false", ExitCode: 1}}}
	a.ifaces[ifaceKey{"lab1", "r1", "eth1"}] = converged("lab1", "r1", "eth1", 2050)
	a.ifaces[ifaceKey{"lab1", "r2", "eth1"}] = converged("lab1", "r2", "eth1", 2050)
	a.ifaces[ifaceKey{"lab1", "r2", "eth2"}] = converged("lab1", "r2", "eth2", 2051)
	a.tunnels[linkKey{"lab1", cross.Name}] = wire.TunnelResult{LabID: "lab1", LinkID: cross.Name, Status: wire.StatusError, Error: &boom}

	tests := []struct {
		name        string
		b           *hostAnswer // nil: hostB not asked in this round
		wantCross   string
		wantWhy     string
		wantR3      string
		wantObs     int
		wantPartial []string
	}{
		{"hostB unreachable: its side and node unknown", &hostAnswer{host: "hostB", unknown: "hostB unreachable"}, "error",
			"hostA: tunnel " + ident.PortName("lab1", cross.Name) + ": " + boom + "; hostB unreachable", "unknown", 3, nil},
		{"hostB not asked: its side keeps what it had (up)", nil, "error",
			store.PartialStatePrefix + "hostA: tunnel " + ident.PortName("lab1", cross.Name) + ": " + boom, "", 2, []string{"hostB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := cross
			c.TargetStatus = store.LinkUp
			d := desired(store.LabStarting, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}, same, c)
			answers := map[string]*hostAnswer{"hostA": a}
			if tt.b != nil {
				answers["hostB"] = tt.b
			}
			o := observe(&d, answers, nil, nil)
			if len(o.Nodes) != tt.wantObs || len(o.Links) != 2 || len(o.Mappings) != 3 {
				t.Fatalf("observations %+v", o)
			}
			if n := d.Nodes[0]; n.Status != store.LinkUp || n.RuntimeID != "nl-lab1-r1" {
				t.Errorf("r1 %+v", n)
			}
			// A failed exec command leaves its node up, and is kept apart.
			if n := d.Nodes[1]; n.Status != store.LinkUp || n.Error != "" || len(n.ExecFailures) != 1 || n.ExecFailures[0].Command != "false" {
				t.Errorf("r2 %+v", n)
			}
			if i := slices.IndexFunc(o.Nodes, func(n store.NodeObservation) bool { return n.Node == "r2" }); i < 0 || !o.Nodes[i].Made || len(o.Nodes[i].ExecFailures) != 1 {
				t.Errorf("r2 observed %+v, want made with its exec failure", o.Nodes)
			}
			if n := d.Nodes[2]; n.Status != tt.wantR3 {
				t.Errorf("r3 %+v, want %q", n, tt.wantR3)
			}
			if ls := d.Links[0]; ls.ActualState != store.LinkUp {
				t.Errorf("same-host link %+v", ls)
			}
			ls := d.Links[1]
			if ls.ActualState != tt.wantCross || ls.Error != tt.wantWhy || !cmp.Equal(ls.PartialHosts, tt.wantPartial) || ls.SourceAttached {
				t.Errorf("cross-host link %q %q %v attached %v; want %q %q %v", ls.ActualState, ls.Error, ls.PartialHosts, ls.SourceAttached, tt.wantCross, tt.wantWhy, tt.wantPartial)
			}
			if o.Links[1].TargetObserved || !o.Links[1].SourceObserved || !cmp.Equal(o.Answered, []string{"hostA"}) {
				t.Errorf("observed sides %+v, hosts that answered %v; want hostA's only", o.Links[1], o.Answered)
			}
			// The same answers again change nothing: nothing to write.
			if again := observe(&d, answers, nil, nil); len(again.Links)+len(again.Nodes)+len(again.Mappings) != 0 {
				t.Errorf("a second observation writes %+v", again)
			}
			state, why := labState(d.Nodes, d.Links, nil)
			if state != store.LabError || why == "" {
				t.Errorf("lab %q %q, want error with a summary", state, why)
			}
		})
	}
}

// TestLabState derives a lab's state from its nodes and links.
func TestLabState(t *testing.T) {
	t.Parallel()
	node := func(status, why string) store.LabNode {
		return store.LabNode{Lab: "lab1", Node: store.Node{Name: "r1", Status: status, Error: why}}
	}
	up := store.LinkState{Name: "l1", ActualState: store.LinkUp}
	tests := []struct {
		name    string
		nodes   []store.LabNode
		links   []store.LinkState
		want    string
		wantWhy string
	}{
		{"all up", []store.LabNode{node("up", "")}, []store.LinkState{up}, store.LabRunning, ""},
		{"a node not yet answered", []store.LabNode{node("pending", "")}, []store.LinkState{up}, store.LabStarting, ""},
		{"a host unreachable", []store.LabNode{node("unknown", "hostB unreachable")}, []store.LinkState{up}, store.LabError,
			"1 of 1 nodes and 0 of 1 links are not up: node r1: hostB unreachable"},
		{"a failure and a pending node", []store.LabNode{node("pending", "")}, []store.LinkState{{Name: "l1", ActualState: "error", Error: "hostA: boom"}},
			store.LabError, "1 of 1 nodes and 1 of 1 links are not up: link l1: hostA: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state, why := labState(tt.nodes, tt.links, nil)
			if state != tt.want || why != tt.wantWhy {
				t.Errorf("got %q %q; want %q %q", state, why, tt.want, tt.wantWhy)
			}
		})
	}
}

// TestObserveOmitted leaves r3 out of a round (made again): it and its link
// side are pending, not unknown, so the lab stays starting.
func TestObserveOmitted(t *testing.T) {
	t.Parallel()
	vni := 5000
	cross := placedLink(link("r2:eth2", "r3:eth1"), "hostA", 2051, "hostB", 2060, &vni)
	cross.SourceStatus, cross.TargetStatus, cross.ActualState = store.LinkUp, store.LinkUp, store.LinkUp
	d := desired(store.LabStarting, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}, cross)
	d.Nodes = d.Nodes[1:]
	d.Nodes[0].Status, d.Nodes[1].Status = store.LinkUp, store.LinkUp
	o := observe(&d, map[string]*hostAnswer{"hostB": newHostAnswer("hostB")}, map[nodeKey]bool{{"lab1", "r3"}: true}, nil)
	if len(o.Nodes) != 1 || o.Nodes[0].Status != store.LinkPending || len(o.Links) != 1 || o.Links[0].TargetStatus != store.LinkPending ||
		o.Links[0].Actual != store.LinkPending {
		t.Fatalf("observations %+v", o)
	}
	if state, why := labState(d.Nodes, d.Links, nil); state != store.LabStarting {
		t.Errorf("lab %s %q, want starting", state, why)
	}
}

// TestRemakes: which nodes an apply makes again, and the reason --plan
// shows.
func TestRemakes(t *testing.T) {
	t.Parallel()
	r1 := topology.Node{Name: "r1", Kind: "linux", Host: "hostA", Exec: []string{"ip link set eth1 up"}}
	with := func(f func(*topology.Node)) topology.Node { n := r1; f(&n); return n }
	tests := []struct {
		name string
		next topology.Node
		move string // the host r1 leaves, if it moves
		want string // "" for no remake
	}{
		{"the same node", r1, "", ""},
		{"pinned where it is", with(func(n *topology.Node) { n.Host = "hostA" }), "", ""},
		{"exec changed", with(func(n *topology.Node) { n.Exec = nil }), "", "exec changed"},
		{"kind and image changed", with(func(n *topology.Node) { n.Kind, n.Image = "frr", "frr:9" }), "", `kind linux → frr, image "" → "frr:9"`},
		{"moved", with(func(n *topology.Node) { n.Host = "hostB" }), "hostA", "moves hostA → hostB"},
		{"exec changed and moved", with(func(n *topology.Node) { n.Host, n.Exec = "hostB", nil }), "hostA", "exec changed, moves hostA → hostB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dep := deployment{placement: map[string]string{"r1": tt.next.Host}, moves: map[string]string{}}
			if tt.move != "" {
				dep.moves["r1"] = tt.move
			}
			change := store.LabChange{ChangeNodes: []topology.Node{tt.next}}
			if got := remakes(topology.Lab{Nodes: []topology.Node{r1}}, change, dep)["r1"]; got != tt.want {
				t.Errorf("reason %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRemakeContainerSettings: a container node is made again when its
// settings or a file it binds change, not when an unrelated file does.
func TestRemakeContainerSettings(t *testing.T) {
	t.Parallel()
	r1 := topology.Node{Name: "r1", Kind: "frr", Image: "frr:9", NodeSettings: wire.NodeSettings{StartupConfig: "r1.conf"}}
	was := topology.Lab{Nodes: []topology.Node{r1}, Files: map[string][]byte{"r1.conf": []byte("a"), "other": []byte("x")}}
	env := r1
	env.Container = &wire.Container{Env: map[string]string{"A": "1"}}
	tests := []struct {
		name  string
		next  topology.Node
		files map[string][]byte
		want  string
	}{
		{"nothing changed", r1, was.Files, ""},
		{"unrelated file", r1, map[string][]byte{"r1.conf": []byte("a"), "other": []byte("y")}, ""},
		{"startup-config edited", r1, map[string][]byte{"r1.conf": []byte("b")}, "files changed: .netloom/frr/frr.conf"},
		{"env added", env, was.Files, "settings changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := topology.Lab{Nodes: []topology.Node{tt.next}, Files: tt.files}
			change := diff(was, next)
			if got := remakes(was, change, deployment{placement: map[string]string{}, moves: map[string]string{}})["r1"]; got != tt.want {
				t.Errorf("reason %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLinkMTU: 1500 on one host; across hosts what the smaller underlay
// carries after VXLAN's 50 bytes, at most 1500; an asked MTU the underlay
// cannot carry is an error with both hosts' numbers unless fragmentation is
// allowed.
func TestLinkMTU(t *testing.T) {
	t.Parallel()
	underlay := map[string]int{"hostA": 1500, "hostB": 1400, "jumbo1": 9000, "jumbo2": 9100}
	tests := []struct {
		name     string
		asked    int
		fragment bool
		a, b     string
		want     int
		wantErr  string
	}{
		{"same host, default", 0, false, "hostA", "hostA", 1500, ""},
		{"same host, jumbo", 9000, false, "hostA", "hostA", 9000, ""},
		{"cross-host default over 1500", 0, false, "hostA", "hostC", 1450, ""}, // hostC reports none: 1500
		{"cross-host default, the smaller underlay decides", 0, false, "hostA", "hostB", 1350, ""},
		{"cross-host default over jumbo underlays is capped", 0, false, "jumbo1", "jumbo2", 1500, ""},
		{"cross-host jumbo over jumbo underlays", 8950, false, "jumbo1", "jumbo2", 8950, ""},
		{"cross-host jumbo over 1500", 9000, false, "hostA", "hostC", 1450,
			"mtu 9000 needs 9050-byte packets on the underlay between hostA (MTU 1500) and hostC (MTU 1500): at most 1450 fits"},
		{"fragmentation allowed", 9000, true, "hostA", "hostB", 9000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := linkMTU(tt.asked, tt.fragment, tt.a, tt.b, underlay)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("%d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestUnderlayProblem: a cross-host link both of whose ends converged is
// not up while either host's agent finds the underlay to the other failing.
func TestUnderlayProblem(t *testing.T) {
	t.Parallel()
	vni := 5000
	cross := placedLink(link("r2:eth2", "r3:eth1"), "hostA", 2051, "hostB", 2060, &vni)
	d := desired(store.LabRunning, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}, cross)
	d.Hosts[1].Underlay = []wire.UnderlayCheck{{PeerIP: "10.0.0.1", Status: wire.UnderlayMTUTooSmall, NeedMTU: 1500, PathMTU: 1400},
		{PeerIP: "10.0.0.3", Status: wire.UnderlayPortBlocked}}
	answers := map[string]*hostAnswer{}
	for host, decl := range hostDeclarations(d, nil) {
		a := newHostAnswer(host)
		for _, n := range decl.Nodes {
			for _, ifc := range n.Interfaces {
				tag := ifc.VLANTag
				a.ifaces[ifaceKey{n.LabID, n.Name, ifc.Name}] = wire.InterfaceStatus{Status: wire.StatusConverged, ActualVLAN: &tag}
			}
			a.nodes[nodeKey{n.LabID, n.Name}] = wire.NodeStatus{Status: wire.StatusConverged}
		}
		for _, tn := range decl.Tunnels {
			a.tunnels[linkKey{tn.LabID, tn.LinkID}] = wire.TunnelResult{Status: wire.StatusConverged}
		}
		answers[host] = a
	}
	observe(&d, answers, nil, nil)
	ls := d.Links[0]
	if ls.ActualState != store.LinkError || ls.Error != "underlay hostB → hostA: path MTU 1400 below the needed 1500" {
		t.Errorf("link %s %q", ls.ActualState, ls.Error)
	}
}
