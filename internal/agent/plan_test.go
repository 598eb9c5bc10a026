package agent

import (
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
