package agent

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/wire"
)

// BenchmarkPlanConverged plans 1000 tunnels against a host that already
// holds them: the no-op declaration's pure part.
func BenchmarkPlanConverged(b *testing.B) {
	tunnels := make([]wire.DeclaredTunnel, 1000)
	obs := fabric.Observed{BridgeExists: true, Ports: map[string]fabric.Port{}, Devices: map[string]fabric.Device{}, Links: map[string]int{}}
	for i := range tunnels {
		name := fmt.Sprintf("vxlan-%08x", i)
		tunnels[i] = wire.DeclaredTunnel{LinkID: fmt.Sprintf("r%d:eth1-s%d:eth1", i, i), LabID: "lab", VNI: 10000 + i,
			LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2", ExpectedVLAN: 2050 + i%1900, PortName: name, MTU: 1450}
		obs.Ports[name] = fabric.Port{Name: name, Tag: tunnels[i].ExpectedVLAN, Owner: fabric.Owner{Lab: "lab", Link: tunnels[i].LinkID}}
		obs.Devices[name] = fabric.Device{Name: name, VNI: uint32(10000 + i), Local: netip.MustParseAddr("10.77.0.1"),
			Remote: netip.MustParseAddr("10.77.0.2"), DstPort: 4789, MTU: 1450, Up: true}
		obs.Links[name] = i + 10
	}
	scope := map[string]bool{"lab": true}
	for b.Loop() {
		if tp := planTunnels(tunnels, scope, obs, 1450, true); !tp.plan.Empty() {
			b.Fatal("a converged host needs no change")
		}
	}
}
