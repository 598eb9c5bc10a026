package agent_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

func (a *agentHost) ping(t *testing.T, from, to string) int {
	t.Helper()
	got, err := testbed.PingFrom(t.Context(), ident.NamespaceName(a.lab, from), netip.MustParseAddr(to), 2)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAgentNodesAndLinks drives the node, link and port endpoints of a
// running agent and proves the result with packets.
func TestAgentNodesAndLinks(t *testing.T) {
	a := newAgentHost(t)
	lab := a.lab
	addrs := map[string]string{"r1": "192.168.80.1/24", "r2": "192.168.80.2/24", "r3": "192.168.80.3/24"}
	ports := map[string]wire.NodePort{}

	t.Run("create nodes", func(t *testing.T) {
		for _, n := range []wire.CreateNodeRequest{
			{Name: "r1", Interfaces: []wire.NodeInterface{{Name: "eth1", MTU: 1450}, {Name: "eth2"}}},
			{Name: "r2", Interfaces: []wire.NodeInterface{{Name: "eth1", MTU: 1450}}},
			{Name: "r3", Interfaces: []wire.NodeInterface{{Name: "eth1", MTU: 1450}}},
		} {
			var resp wire.NodeResponse
			if code := a.call(t, "POST", "/labs/"+lab+"/nodes", token, n, &resp); code != 200 {
				t.Fatalf("create %s: status %d", n.Name, code)
			}
			if resp.RuntimeID != ident.NamespaceName(lab, n.Name) || len(resp.Ports) != len(n.Interfaces) {
				t.Fatalf("create %s: %+v", n.Name, resp)
			}
			for _, p := range resp.Ports {
				ports[n.Name+":"+p.Interface] = p
			}
			if _, err := testbed.ExecIn(t.Context(), resp.RuntimeID, "ip", "addr", "add", addrs[n.Name], "dev", "eth1"); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if p.VLANTag < 100 || p.VLANTag > 2049 || seen[p.VLANTag] {
				t.Errorf("port %+v: want its own isolated tag", p)
			}
			seen[p.VLANTag] = true
		}
		var e wire.ErrorResponse
		bad := wire.CreateNodeRequest{Name: "r/4", Interfaces: []wire.NodeInterface{{Name: "eth1"}, {Name: "eth1", MTU: 9}}}
		if code := a.call(t, "POST", "/labs/"+lab+"/nodes", token, bad, &e); code != 400 || len(e.Problems) != 3 {
			t.Errorf("bad node: status %d problems %+v, want 400 with 3", code, e.Problems)
		}
	})

	t.Run("port state", func(t *testing.T) {
		var st wire.PortStateResponse
		if code := a.call(t, "GET", "/labs/"+lab+"/port-state", token, nil, &st); code != 200 || len(st.Ports) != 4 {
			t.Fatalf("status %d ports %+v, want 4", code, st.Ports)
		}
		for _, p := range st.Ports {
			want := ports[p.NodeName+":"+p.InterfaceName]
			if p.OVSPortName != want.PortName || p.VLANTag != want.VLANTag || p.Carrier != "on" {
				t.Errorf("port %+v, want %+v with carrier on", p, want)
			}
		}
		if _, err := testbed.ExecIn(t.Context(), ident.NamespaceName(lab, "r1"), "ip", "link", "set", "eth2", "down"); err != nil {
			t.Fatal(err)
		}
		a.call(t, "GET", "/labs/"+lab+"/port-state", token, nil, &st)
		for _, p := range st.Ports {
			if p.NodeName == "r1" && p.InterfaceName == "eth2" && p.Carrier != "off" {
				t.Errorf("r1:eth2 is down in the node, carrier %q, want off", p.Carrier)
			}
		}
	})

	var linkTag int
	t.Run("same-host link", func(t *testing.T) {
		if got := a.ping(t, "r1", "192.168.80.2"); got != 0 {
			t.Fatalf("r1 reaches r2 before any link: %d replies", got)
		}
		var resp wire.SameHostLinkResponse
		req := wire.SameHostLinkRequest{SourceNode: "r1", SourceInterface: "eth1", TargetNode: "r2", TargetInterface: "eth1"}
		if code := a.call(t, "POST", "/labs/"+lab+"/links", token, req, &resp); code != 200 || !resp.Success || *resp.VLANTag < 2050 {
			t.Fatalf("status %d %+v", code, resp)
		}
		linkTag = *resp.VLANTag
		if resp.LinkID != "r1:eth1-r2:eth1" {
			t.Errorf("link id %q", resp.LinkID)
		}
		if got := a.ping(t, "r1", "192.168.80.2"); got != 2 {
			t.Errorf("r1→r2 over the link: %d/2", got)
		}
		if got := a.ping(t, "r3", "192.168.80.1"); got != 0 {
			t.Errorf("r3 reaches r1: %d replies", got)
		}
	})

	t.Run("ports declare-state", func(t *testing.T) {
		p1, p2, p3 := ports["r1:eth1"].PortName, ports["r2:eth1"].PortName, ports["r3:eth1"].PortName
		var resp wire.PortDeclareResponse
		req := wire.PortDeclareRequest{Pairings: []wire.PortPairing{
			{LinkName: "r1:eth1-r2:eth1", LabID: lab, PortA: p1, PortB: p2, VLANTag: linkTag},
			{LinkName: "x:eth1-r3:eth1", LabID: "other-lab", PortA: "vxlan-deadbeef", PortB: p3, VLANTag: 2222},
		}}
		if code := a.call(t, "POST", "/ports/declare-state", token, req, &resp); code != 200 {
			t.Fatalf("status %d", code)
		}
		if resp.Results[0].Status != "converged" || resp.Results[1].Status != "error" ||
			!strings.Contains(*resp.Results[1].Error, "not on the bridge") || !strings.Contains(*resp.Results[1].Error, "not a node port of lab other-lab") {
			t.Errorf("results %+v", resp.Results)
		}
		tags, _ := a.bridgePorts(t)
		if tags[p3] != ports["r3:eth1"].VLANTag {
			t.Errorf("an error pairing retagged %s", p3)
		}
		req = wire.PortDeclareRequest{Pairings: []wire.PortPairing{{LinkName: "r1:eth1-r2:eth1", LabID: lab, PortA: p1, PortB: p2, VLANTag: 2100}}}
		a.call(t, "POST", "/ports/declare-state", token, req, &resp)
		tags, _ = a.bridgePorts(t)
		if resp.Results[0].Status != "updated" || tags[p1] != 2100 || tags[p2] != 2100 {
			t.Errorf("retag to 2100: %+v, bridge %d %d", resp.Results, tags[p1], tags[p2])
		}
	})

	tunnelPort := ident.PortName(lab, "r3:eth1-r9:eth1")
	t.Run("attach and detach a cross-host side", func(t *testing.T) {
		req := wire.AttachLinkRequest{LabID: lab, ContainerName: "r3", InterfaceName: "eth1", VNI: 7001,
			LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2", LinkID: "r3:eth1-r9:eth1", TenantMTU: 1450}
		var resp wire.AttachLinkResponse
		if code := a.call(t, "POST", "/overlay/attach-link", token, req, &resp); code != 200 || !resp.Success {
			t.Fatalf("attach: %d %+v", code, resp)
		}
		tags, _ := a.bridgePorts(t)
		if resp.PortName != tunnelPort || tags[tunnelPort] != *resp.LocalVLAN || tags[ports["r3:eth1"].PortName] != *resp.LocalVLAN {
			t.Fatalf("attach: %+v; bridge tunnel tag %d node tag %d", resp, tags[tunnelPort], tags[ports["r3:eth1"].PortName])
		}
		first := *resp.LocalVLAN
		a.call(t, "POST", "/overlay/attach-link", token, req, &resp)
		if !resp.Success || *resp.LocalVLAN != first {
			t.Errorf("attach again: %+v, want the same tag %d", resp, first)
		}
		var missing wire.ErrorResponse
		req.ContainerName = "r8"
		if code := a.call(t, "POST", "/overlay/attach-link", token, req, &missing); code != 404 {
			t.Errorf("attach for an unknown node: %d, want 404", code)
		}
		var det wire.DetachLinkResponse
		dreq := wire.DetachLinkRequest{LabID: lab, ContainerName: "r3", InterfaceName: "eth1", LinkID: "r3:eth1-r9:eth1"}
		if code := a.call(t, "POST", "/overlay/detach-link", token, dreq, &det); code != 200 || !det.Success || !det.TunnelDeleted || !det.InterfaceIsolated || *det.NewVLAN > 2049 {
			t.Fatalf("detach: %d %+v", code, det)
		}
		if _, ok := a.vxlanDevices(t)[tunnelPort]; ok {
			t.Error("the tunnel device survived detach")
		}
		if code := a.call(t, "POST", "/overlay/detach-link", token, dreq, &det); code != 200 || !det.Success || det.TunnelDeleted {
			t.Errorf("detach again: %d %+v, want success with nothing deleted", code, det)
		}
	})

	t.Run("set vlan", func(t *testing.T) {
		var resp wire.SetVLANResponse
		p3 := ports["r3:eth1"].PortName
		if code := a.call(t, "PUT", "/overlay/ports/"+p3+"/vlan", token, wire.SetVLANRequest{VLANTag: 1234}, &resp); code != 200 || !resp.InMemoryUpdated {
			t.Fatalf("status %d %+v", code, resp)
		}
		if _, err := a.host.VSCtl(t.Context(), "add-port", bridge, "handmade", "tag=9", "--", "set", "interface", "handmade", "type=internal"); err != nil {
			t.Fatal(err)
		}
		var e wire.ErrorResponse
		if code := a.call(t, "PUT", "/overlay/ports/handmade/vlan", token, wire.SetVLANRequest{VLANTag: 10}, &e); code != 409 {
			t.Errorf("retag of an unowned port: %d, want 409", code)
		}
		if code := a.call(t, "PUT", "/overlay/ports/nosuchport/vlan", token, wire.SetVLANRequest{VLANTag: 10}, &e); code != 404 {
			t.Errorf("retag of a missing port: %d, want 404", code)
		}
		if code := a.call(t, "PUT", "/overlay/ports/"+p3+"/vlan", token, wire.SetVLANRequest{VLANTag: 5000}, &e); code != 400 {
			t.Errorf("tag 5000: %d, want 400", code)
		}
		// The new tag is kept: drift back to the old one is repaired to 1234.
		if _, err := a.host.VSCtl(t.Context(), "set", "port", p3, "tag=77"); err != nil {
			t.Fatal(err)
		}
		a.waitFor(t, "node port tag repaired", func() bool { tags, _ := a.bridgePorts(t); return tags[p3] == 1234 })
	})

	t.Run("node port deleted by hand comes back", func(t *testing.T) {
		p1 := ports["r1:eth1"].PortName
		if _, err := a.host.VSCtl(t.Context(), "del-port", p1); err != nil {
			t.Fatal(err)
		}
		took := a.waitFor(t, "node port back", func() bool { tags, _ := a.bridgePorts(t); return tags[p1] == 2100 })
		t.Logf("node port back after %v", took)
		if got := a.ping(t, "r1", "192.168.80.2"); got != 2 {
			t.Errorf("r1→r2 after repair: %d/2", got)
		}
	})

	t.Run("reconcile-ports whitelist (W-8)", func(t *testing.T) {
		req := wire.AttachLinkRequest{LabID: lab, ContainerName: "r3", InterfaceName: "eth1", VNI: 7001,
			LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2", LinkID: "r3:eth1-r9:eth1"}
		var att wire.AttachLinkResponse
		if code := a.call(t, "POST", "/overlay/attach-link", token, req, &att); code != 200 || !att.Success {
			t.Fatalf("attach: %d %+v", code, att)
		}
		var resp wire.ReconcilePortsResponse
		for _, tt := range []struct {
			req    wire.ReconcilePortsRequest
			reason string
		}{
			{wire.ReconcilePortsRequest{Force: true}, "force requires confirm=true"},
			{wire.ReconcilePortsRequest{}, "empty valid_port_names"},
			{wire.ReconcilePortsRequest{Force: true, Confirm: true}, "empty valid_port_names requires allow_empty=true when force=true"},
		} {
			a.call(t, "POST", "/overlay/reconcile-ports", token, tt.req, &resp)
			if !resp.Skipped || resp.Reason != tt.reason || len(resp.RemovedPorts) != 0 {
				t.Errorf("%+v: %+v, want skipped: %s", tt.req, resp, tt.reason)
			}
		}
		a.call(t, "POST", "/overlay/reconcile-ports", token, wire.ReconcilePortsRequest{ValidPortNames: []string{"vxlan-00000000"}}, &resp)
		if !slices.Equal(resp.RemovedPorts, []string{tunnelPort}) {
			t.Fatalf("removed %v, want only %s (not the hand-made port)", resp.RemovedPorts, tunnelPort)
		}
		// Forgotten as well as removed: repair must not bring it back.
		time.Sleep(300 * time.Millisecond) // longer than a debounced repair takes
		if tags, _ := a.bridgePorts(t); tags[tunnelPort] != 0 {
			t.Error("repair recreated a port the whitelist removed")
		}
		var st wire.OverlayStatus
		a.call(t, "GET", "/overlay/status", token, nil, &st)
		if len(st.LinkTunnels) != 0 {
			t.Errorf("status still lists %+v", st.LinkTunnels)
		}
	})

	t.Run("unlink, delete node, clean up", func(t *testing.T) {
		var resp wire.SameHostLinkResponse
		if code := a.call(t, "DELETE", "/labs/"+lab+"/links/r1:eth1-r2:eth1", token, nil, &resp); code != 200 || !resp.Success {
			t.Fatalf("unlink: %d %+v", code, resp)
		}
		if got := a.ping(t, "r1", "192.168.80.2"); got != 0 {
			t.Errorf("r1 reaches r2 after unlink: %d replies", got)
		}
		var e wire.ErrorResponse
		if code := a.call(t, "DELETE", "/labs/"+lab+"/links/r1:eth1-r7:eth1", token, nil, &e); code != 404 {
			t.Errorf("unlink of an unknown link: %d, want 404", code)
		}
		if code := a.call(t, "DELETE", "/labs/"+lab+"/nodes/r3", token, nil, nil); code != 200 {
			t.Fatalf("delete r3: %d", code)
		}
		var cl wire.CleanupResponse
		if code := a.call(t, "POST", "/overlay/cleanup", token, wire.CleanupRequest{LabID: lab}, &cl); code != 200 || cl.NodesDeleted != 2 || len(cl.Errors) != 0 {
			t.Fatalf("cleanup: %d %+v", code, cl)
		}
		tags, labs := a.bridgePorts(t)
		for name, l := range labs {
			if l == lab {
				t.Errorf("port %s of the lab survived cleanup", name)
			}
		}
		if _, ok := tags["handmade"]; !ok {
			t.Error("cleanup removed the hand-made port")
		}
		var st wire.PortStateResponse
		if code := a.call(t, "GET", "/labs/"+lab+"/port-state", token, nil, &st); code != 200 || len(st.Ports) != 0 {
			t.Errorf("port state after cleanup: %d %+v", code, st.Ports)
		}
	})
}
