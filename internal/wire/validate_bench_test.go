package wire

import (
	"fmt"
	"testing"
)

// BenchmarkValidateDeclaration validates a 1000-tunnel declaration.
func BenchmarkValidateDeclaration(b *testing.B) {
	req := DeclareStateRequest{DeclaredLabs: []string{"lab"}}
	for i := range 1000 {
		req.Tunnels = append(req.Tunnels, DeclaredTunnel{LinkID: fmt.Sprintf("r%d:eth1-s%d:eth1", i, i), LabID: "lab",
			VNI: 10000 + i, LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2", ExpectedVLAN: 2050, PortName: fmt.Sprintf("vxlan-%08x", i)})
	}
	for b.Loop() {
		if err := req.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
