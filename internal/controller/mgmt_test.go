package controller

import (
	"errors"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// TestMgmtSubnet: a lab gets the subnet its file asks for unless another
// lab's overlaps it, else keeps its own, else the default or the next free
// /24.
func TestMgmtSubnet(t *testing.T) {
	t.Parallel()
	others := func(subnets ...string) []store.Lab {
		var out []store.Lab
		for i, s := range subnets {
			name := string(rune('a' + i))
			out = append(out, store.Lab{ID: name, Name: name, MgmtSubnet: s})
		}
		return out
	}
	asking := func(node string) topology.Lab {
		return topology.Lab{Name: "x", Nodes: []topology.Node{{Name: "r1", MgmtIPv4: node}}}
	}
	tests := []struct {
		name    string
		lab     topology.Lab
		current string
		others  []store.Lab
		want    string
		wantErr string
	}{
		{"first lab", asking(""), "", nil, "172.20.20.0/24", ""},
		{"default taken", asking(""), "", others("172.20.20.0/24", "172.20.21.0/24"), "172.20.22.0/24", ""},
		{"keeps its own", asking(""), "172.20.23.0/24", others("172.20.20.0/24"), "172.20.23.0/24", ""},
		{"its own is itself", topology.Lab{Name: "a"}, "172.20.20.0/24", others("172.20.20.0/24"), "172.20.20.0/24", ""},
		{"asked", topology.Lab{Name: "x", Mgmt: topology.Mgmt{Subnet: "10.1.0.0/16"}}, "172.20.20.0/24", others("10.2.0.0/16"), "10.1.0.0/16", ""},
		{"asked overlaps", topology.Lab{Name: "x", Mgmt: topology.Mgmt{Subnet: "10.1.0.0/16"}}, "", others("10.1.2.0/24"), "",
			"mgmt.ipv4-subnet 10.1.0.0/16 overlaps 10.1.2.0/24, the management subnet of lab a"},
		{"node asks in the default", asking("172.20.20.9"), "172.20.25.0/24", others("10.0.0.0/8"), "172.20.20.0/24", ""},
		{"node asks in a taken default", asking("172.20.20.9"), "", others("172.20.0.0/16"), "", "overlaps 172.20.0.0/16, the management subnet of lab a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := mgmtSubnet(tt.lab, tt.current, tt.others)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, store.ErrConflict)):
				t.Errorf("got %q, %v; want a conflict saying %q", got, err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestAllocateMgmt: nodes get addresses (asked first, kept after, the
// lowest free else), each host a tag, an address from the top and, but
// the hub, a VNI; the declarations carry eth0 on each node, the host's own
// interface and one tunnel per host to the hub; a host the lab leaves
// loses its segment.
func TestAllocateMgmt(t *testing.T) {
	t.Parallel()
	d := desired(store.LabRunning, map[string]string{"r1": "hostA", "r2": "hostB", "r3": "hostB"},
		placedLink(link("r1:eth1", "r2:eth1"), "hostA", 2050, "hostB", 2050, tag(5000)))
	d.Labs[0].MgmtSubnet = "172.20.20.0/24"
	d.Nodes[1].MgmtIPv4 = "172.20.20.2" // asked: r1 must not keep or get it
	d.Nodes[0].MgmtAddress = "172.20.20.2"
	d.Nodes = append(d.Nodes, store.LabNode{Lab: "lab1", Node: store.Node{Name: "sw", Kind: "bridge", PlacedOn: "hostA"}},
		store.LabNode{Lab: "lab1", Node: store.Node{Name: "r4", Kind: "linux", NetworkMode: "none", PlacedOn: "hostA", MgmtAddress: "172.20.20.9"}})
	d.Mgmt = []store.MgmtSegment{{LabID: "lab1", Host: "hostC", Address: "172.20.20.252/24", Tag: 2060, VNI: tag(77)}}

	out, problems := allocateMgmt(&d)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	addrs := map[string]string{}
	for _, n := range d.Nodes {
		addrs[n.Name] = n.MgmtAddress
	}
	if addrs["r1"] != "172.20.20.3" || addrs["r2"] != "172.20.20.2" || addrs["r3"] != "172.20.20.4" || addrs["sw"] != "" || addrs["r4"] != "" {
		t.Errorf("addresses %v", addrs)
	}
	if len(out.Addresses) != 4 || len(out.Drop) != 1 || out.Drop[0].Host != "hostC" || len(out.Segments) != 2 {
		t.Errorf("allocation %+v", out)
	}
	a, b := d.Mgmt[0], d.Mgmt[1]
	if a.Host != "hostA" || a.Address != "172.20.20.254/24" || a.Tag != 2051 || a.VNI != nil || a.Hub != "" ||
		b.Host != "hostB" || b.Address != "172.20.20.253/24" || b.Tag != 2051 || b.VNI == nil || b.Hub != "hostA" {
		t.Errorf("segments %+v %+v", a, b)
	}

	// Stored and read again, nothing changes.
	again, _ := allocateMgmt(&d)
	if !again.Empty() {
		t.Errorf("a second allocation changes %+v", again)
	}

	decls := hostDeclarations(d, nil)
	gw := ident.MgmtIface("lab1")
	var eth0s []string
	for _, n := range decls["hostB"].Nodes {
		for _, ifc := range n.Interfaces {
			if ifc.Name == topology.MgmtIface || ifc.Name == gw {
				eth0s = append(eth0s, n.Name+":"+ifc.Name+"@"+strings.Join(ifc.Addresses, ","))
				if ifc.VLANTag != 2051 || ifc.MTU != 1450 {
					t.Errorf("%s:%s tag %d mtu %d", n.Name, ifc.Name, ifc.VLANTag, ifc.MTU)
				}
			}
		}
	}
	if want := "r2:eth0@172.20.20.2/24 r3:eth0@172.20.20.4/24 host:" + gw + "@172.20.20.253/24"; strings.Join(eth0s, " ") != want {
		t.Errorf("hostB's management interfaces %q, want %q", eth0s, want)
	}
	mgmtTunnel := func(h string) *wire.DeclaredTunnel {
		for _, tn := range decls[h].Tunnels {
			if tn.LinkID == ident.MgmtLink("hostB") {
				return &tn
			}
		}
		return nil
	}
	ta, tb := mgmtTunnel("hostA"), mgmtTunnel("hostB")
	if ta == nil || tb == nil || ta.VNI != *b.VNI || tb.VNI != *b.VNI || ta.ExpectedVLAN != a.Tag || ta.RemoteIP != "10.0.0.2" || tb.RemoteIP != "10.0.0.1" ||
		ta.PortName != tb.PortName || len(decls["hostC"].Nodes)+len(decls["hostC"].Tunnels) != 0 {
		t.Errorf("management tunnels %+v %+v; hostC %+v", ta, tb, decls["hostC"])
	}
	for _, n := range decls["hostA"].Nodes {
		if n.Name == "r4" && len(n.Interfaces) != 0 {
			t.Errorf("r4 (network-mode none) declared with %+v", n.Interfaces)
		}
	}

	// The answers: hostB's tunnel end failed.
	answers := map[string]*hostAnswer{"hostA": newHostAnswer("hostA"), "hostB": newHostAnswer("hostB")}
	for h, a := range answers {
		a.ifaces[ifaceKey{"lab1", wire.HostNode, gw}] = wire.InterfaceStatus{Status: wire.StatusConverged}
		a.tunnels[linkKey{"lab1", ident.MgmtLink("hostB")}] = wire.TunnelResult{Status: wire.StatusConverged}
		if h == "hostB" {
			why := "boom"
			a.tunnels[linkKey{"lab1", ident.MgmtLink("hostB")}] = wire.TunnelResult{Status: wire.StatusError, Error: &why}
		}
	}
	obs := observeMgmt(&d, answers, nil)
	if len(obs) != 2 || obs[0].Status != store.LinkUp || obs[1].Status != store.LinkError || !strings.Contains(obs[1].Error, "boom") {
		t.Errorf("observations %+v", obs)
	}
	if _, reasons := mgmtReasons(d.Mgmt); len(reasons) != 1 || !strings.HasPrefix(reasons[0], "management network on hostB: ") {
		t.Errorf("reasons %q", reasons)
	}

	// Both ends converged, but hostA's agent finds the VXLAN port to hostB
	// blocked: neither end is up.
	answers["hostB"].tunnels[linkKey{"lab1", ident.MgmtLink("hostB")}] = wire.TunnelResult{Status: wire.StatusConverged}
	d.Hosts[0].Underlay = []wire.UnderlayCheck{{PeerIP: "10.0.0.2", Status: wire.UnderlayPortBlocked}}
	obs = observeMgmt(&d, answers, nil)
	if len(obs) != 2 || obs[0].Status != store.LinkError || obs[1].Status != store.LinkError || !strings.Contains(obs[0].Error, "VXLAN port blocked") {
		t.Errorf("observations across a blocked underlay %+v", obs)
	}
}
