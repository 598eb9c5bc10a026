package agent

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// TestPlanHostEndDown: a node whose host end something set down (an
// ovs-vswitchd letting go of the device) goes to the runtime to be set up,
// and its port stays on the bridge.
func TestPlanHostEndDown(t *testing.T) {
	t.Parallel()
	port := ident.HostPortName("lab", "r1", "eth1")
	node := wire.DeclaredNode{LabID: "lab", Name: "r1", Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2050}}}
	in := planInput{nodes: []wire.DeclaredNode{node}}
	obs := fabric.Observed{BridgeExists: true, Ports: map[string]fabric.Port{
		port: {Name: port, Tag: 2050, Owner: fabric.Owner{Lab: "lab", Node: "r1", Iface: "eth1"}}}, Devices: map[string]fabric.Device{}, Links: map[string]int{}}
	for _, down := range []bool{false, true} {
		running := []runtime.Node{{Lab: "lab", Name: "r1", Ports: []runtime.Port{{Lab: "lab", Node: "r1", Interface: "eth1", HostPort: port, Down: down}}}}
		hp := planHost(in, stateOf(in.nodes, nil), obs, running, pruneLabs(map[string]bool{"lab": true}), 1450)
		if got := len(hp.work) == 1; got != down {
			t.Errorf("host end down %v: runtime work %v", down, hp.work)
		}
		if len(hp.stale) != 0 || len(hp.plan.DeletePorts) != 0 {
			t.Errorf("host end down %v: the port leaves the bridge: stale %v, delete %v", down, hp.stale, hp.plan.DeletePorts)
		}
	}
}

// TestPlanAddresses: a running node goes to the runtime again when an
// interface declares addresses other than the agent held, and only then.
func TestPlanAddresses(t *testing.T) {
	t.Parallel()
	port := ident.HostPortName("lab", "r1", "eth1")
	obs := fabric.Observed{BridgeExists: true, Ports: map[string]fabric.Port{
		port: {Name: port, Tag: 2050, Owner: fabric.Owner{Lab: "lab", Node: "r1", Iface: "eth1"}}}, Devices: map[string]fabric.Device{}, Links: map[string]int{}}
	running := []runtime.Node{{Lab: "lab", Name: "r1", Ports: []runtime.Port{{Lab: "lab", Node: "r1", Interface: "eth1", HostPort: port}}}}
	r1 := func(addrs ...string) wire.DeclaredNode {
		return wire.DeclaredNode{LabID: "lab", Name: "r1", Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2050, Addresses: addrs}}}
	}
	tests := []struct {
		name     string
		held     []wire.DeclaredNode
		declared wire.DeclaredNode
		work     bool
	}{
		{"the same", []wire.DeclaredNode{r1("172.20.20.2/24")}, r1("172.20.20.2/24"), false},
		{"changed", []wire.DeclaredNode{r1("172.20.20.2/24")}, r1("172.20.20.3/24"), true},
		{"one more", []wire.DeclaredNode{r1("172.20.20.2/24")}, r1("172.20.20.2/24", "2001:db8::2/64"), true},
		{"first declared", []wire.DeclaredNode{r1()}, r1("172.20.20.2/24"), true},
		{"running, not held", nil, r1("172.20.20.2/24"), true},
		{"dropped: left alone", []wire.DeclaredNode{r1("172.20.20.2/24")}, r1(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := planInput{nodes: []wire.DeclaredNode{tt.declared}}
			hp := planHost(in, stateOf(tt.held, nil), obs, running, pruneLabs(map[string]bool{"lab": true}), 1450)
			if got := len(hp.work) == 1; got != tt.work {
				t.Fatalf("runtime work %+v, want %v", hp.work, tt.work)
			}
			if tt.work && !slices.Equal(hp.work[0].spec.Interfaces[0].Addresses, prefixes(tt.declared.Interfaces[0].Addresses)) {
				t.Errorf("spec addresses %v, want %v", hp.work[0].spec.Interfaces[0].Addresses, tt.declared.Interfaces[0].Addresses)
			}
			if len(hp.stale) != 0 || !hp.plan.Empty() {
				t.Errorf("the bridge changes: stale %v, plan %+v", hp.stale, hp.plan)
			}
		})
	}
}

// TestPlanOVSTunnel: a tunnel with no MTU of its own (an OVS tunnel) is
// converged whatever the declared MTU, unless that MTU is more than it
// carries.
func TestPlanOVSTunnel(t *testing.T) {
	t.Parallel()
	decl := tun("lab", 1)
	port := fabric.Port{Name: decl.PortName, Tag: decl.ExpectedVLAN, Type: "vxlan", Owner: fabric.Owner{Lab: decl.LabID, Link: decl.LinkID}}
	dev := fabric.Device{Name: decl.PortName, VNI: uint32(decl.VNI), Local: netip.MustParseAddr(decl.LocalIP), Remote: netip.MustParseAddr(decl.RemoteIP), Up: true}
	for _, tt := range []struct {
		name        string
		mtu, maxMTU int
		want        string
		wantApply   bool
	}{
		{name: "max unknown", mtu: 1450, want: wire.StatusConverged},
		{name: "within the underlay", mtu: 1450, maxMTU: 1450, want: wire.StatusConverged},
		{name: "less than the underlay", mtu: 1400, maxMTU: 8950, want: wire.StatusConverged},
		{name: "more than the underlay", mtu: 1500, maxMTU: 1450, want: wire.StatusError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dev
			d.MaxMTU = tt.maxMTU
			obs := fabric.Observed{BridgeExists: true, Ports: map[string]fabric.Port{port.Name: port},
				Devices: map[string]fabric.Device{d.Name: d}, Links: map[string]int{}}
			plan := fabric.Plan{Retag: map[string]int{}, SetMTU: map[string]int{}}
			status, changed, reason := planTunnel(&plan, withMTU(decl, tt.mtu), obs, 1450)
			if status != tt.want || changed || !plan.Empty() {
				t.Errorf("status %s (%s), changed %v, plan %+v; want %s and nothing to do", status, reason, changed, plan, tt.want)
			}
			if tt.want == wire.StatusError && !strings.Contains(reason, "does not fragment") {
				t.Errorf("reason %q does not say why", reason)
			}
		})
	}
}
