package agent

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// BenchmarkPlanConverged plans 1000 nodes and 1000 tunnels against a host
// that already holds them: the no-op declaration's pure part.
func BenchmarkPlanConverged(b *testing.B) {
	var in planInput
	var running []runtime.Node
	obs := fabric.Observed{BridgeExists: true, Ports: map[string]fabric.Port{}, Devices: map[string]fabric.Device{}, Links: map[string]int{}}
	for i := range 1000 {
		name := fmt.Sprintf("vxlan-%08x", i)
		t := wire.DeclaredTunnel{LinkID: fmt.Sprintf("r%d:eth1-s%d:eth1", i, i), LabID: "lab", VNI: 10000 + i,
			LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2", ExpectedVLAN: 2050 + i%1900, PortName: name, MTU: 1450}
		in.tunnels = append(in.tunnels, t)
		obs.Ports[name] = fabric.Port{Name: name, Tag: t.ExpectedVLAN, Owner: fabric.Owner{Lab: "lab", Link: t.LinkID}}
		obs.Devices[name] = fabric.Device{Name: name, VNI: uint32(10000 + i), Local: netip.MustParseAddr("10.77.0.1"),
			Remote: netip.MustParseAddr("10.77.0.2"), DstPort: 4789, MTU: 1450, Up: true}
		obs.Links[name] = i + 10

		node := fmt.Sprintf("r%d", i)
		port := ident.HostPortName("lab", node, "eth1")
		in.nodes = append(in.nodes, wire.DeclaredNode{LabID: "lab", Name: node, Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: t.ExpectedVLAN}}})
		running = append(running, runtime.Node{Lab: "lab", Name: node, Ports: []runtime.Port{{Lab: "lab", Node: node, Interface: "eth1", HostPort: port}}})
		obs.Ports[port] = fabric.Port{Name: port, Tag: t.ExpectedVLAN, Owner: fabric.Owner{Lab: "lab", Node: node, Iface: "eth1"}}
	}
	held := stateOf(in.nodes, in.tunnels)
	pr := pruneLabs(map[string]bool{"lab": true})
	for b.Loop() {
		if hp := planHost(in, held, obs, running, pr, 1450); hp.changed() {
			b.Fatal("a converged host needs no change")
		}
	}
}
