package agent_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

func (a *agentHost) declareHost(t *testing.T, req wire.HostDeclaration) wire.HostDeclarationResponse {
	t.Helper()
	if req.Generation == nil {
		req.Generation = a.current(t)
	}
	var resp wire.HostDeclarationResponse
	if code := a.call(t, "POST", "/host/declare-state", token, req, &resp); code != 200 {
		t.Fatalf("declare on %s: status %d", a.name, code)
	}
	return resp
}

// statusSet renders a host declaration's results as sorted "name status".
func statusSet(resp wire.HostDeclarationResponse) string {
	var s []string
	for _, r := range resp.Nodes {
		s = append(s, r.Name+" "+r.Status)
	}
	for _, r := range resp.Interfaces {
		s = append(s, r.Node+":"+r.Interface+" "+r.Status)
	}
	for _, r := range resp.Tunnels {
		s = append(s, r.LinkID+" "+r.Status)
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// waitPing pings from a node until dst answers, for up to limit, and
// returns how long it took.
func waitPing(t *testing.T, lab, from, dst string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := testbed.PingWithin(t.Context(), ident.NamespaceName(lab, from), netip.MustParseAddr(dst), 1, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if got == 1 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s → %s: no reply within %v", from, dst, limit)
		}
	}
}

// TestHostDeclaration declares two hosts whole — nodes with their exec
// commands, a same-host link and a cross-host link — and proves them with
// packets; then breaks hostB's nodes by hand, and reboots hostB with no
// controller, and times the traffic's return from the agent alone.
func TestHostDeclaration(t *testing.T) {
	bed := testbed.Start(t)
	a := newAgentHostOn(t, bed, "hostA", "10.77.0.1")
	b := newAgentHostOn(t, bed, "hostB", "10.77.0.2")
	lab := a.lab
	cross := ident.LinkName("r1:eth2", "r3:eth1")
	vni := int(ident.VNI(lab, cross))
	declA := wire.HostDeclaration{Generation: gen(1), Nodes: []wire.DeclaredNode{
		{LabID: lab, Name: "r1", Exec: []string{"ip addr add 192.168.81.1/24 dev eth1", "ip addr add 192.168.82.1/24 dev eth2"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2100}, {Name: "eth2", VLANTag: 2200, MTU: 1450}}},
		{LabID: lab, Name: "r2", Exec: []string{"ip addr add 192.168.81.2/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2100}}},
	}, Tunnels: []wire.DeclaredTunnel{{LinkID: cross, LabID: lab, VNI: vni, LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2",
		ExpectedVLAN: 2200, PortName: ident.PortName(lab, cross), MTU: 1450}}}
	declB := wire.HostDeclaration{Generation: gen(1), Nodes: []wire.DeclaredNode{
		{LabID: lab, Name: "r3", Exec: []string{"ip addr add 192.168.82.3/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2300, MTU: 1450}}},
	}, Tunnels: []wire.DeclaredTunnel{{LinkID: cross, LabID: lab, VNI: vni, LocalIP: "10.77.0.2", RemoteIP: "10.77.0.1",
		ExpectedVLAN: 2300, PortName: ident.PortName(lab, cross), MTU: 1450}}}

	t.Run("declare from empty", func(t *testing.T) {
		ra, rb := a.declareHost(t, declA), b.declareHost(t, declB)
		if got, want := statusSet(ra), "r1 created, r1:eth1 created, r1:eth2 created, r1:eth2-r3:eth1 created, r2 created, r2:eth1 created"; got != want {
			t.Errorf("hostA: %s, want %s", got, want)
		}
		if got, want := statusSet(rb), "r1:eth2-r3:eth1 created, r3 created, r3:eth1 created"; got != want {
			t.Errorf("hostB: %s, want %s", got, want)
		}
		for _, r := range append(ra.Nodes, rb.Nodes...) {
			if len(r.ExecFailures) > 0 {
				t.Errorf("exec on %s: %v", r.Name, r.ExecFailures)
			}
		}
		tags, _ := a.bridgePorts(t)
		if tags[ident.HostPortName(lab, "r1", "eth2")] != 2200 || tags[ident.PortName(lab, cross)] != 2200 || tags[ident.HostPortName(lab, "r2", "eth1")] != 2100 {
			t.Errorf("hostA bridge tags %v", tags)
		}
		if got := a.ping(t, "r1", "192.168.81.2"); got != 2 {
			t.Errorf("r1 → r2 (same host): %d/2", got)
		}
		if got := a.ping(t, "r1", "192.168.82.3"); got != 2 {
			t.Errorf("r1 → r3 (across hosts): %d/2", got)
		}
	})

	t.Run("the same declaration again writes nothing", func(t *testing.T) {
		before := a.nextCfg(t)
		declA.Generation = gen(2)
		r := a.declareHost(t, declA)
		if got, want := statusSet(r), "r1 converged, r1:eth1 converged, r1:eth2 converged, r1:eth2-r3:eth1 converged, r2 converged, r2:eth1 converged"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		if after := a.nextCfg(t); after != before {
			t.Errorf("next_cfg %d → %d: a no-op declaration wrote to the bridge", before, after)
		}
	})

	t.Run("a node deleted by hand comes back without a controller", func(t *testing.T) {
		if err := netns.Delete(ident.NamespaceName(lab, "r3")); err != nil {
			t.Fatal(err)
		}
		took := waitPing(t, lab, "r1", "192.168.82.3", 10*time.Second)
		t.Logf("r3 deleted by hand: traffic back after %v", took)
	})

	t.Run("reboot of hostB, controller down", func(t *testing.T) {
		if err := b.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		// What a reboot takes: the node namespaces with their veths, and
		// the VXLAN devices; the OVS database and the agent's state stay.
		if err := netns.Delete(ident.NamespaceName(lab, "r3")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.host.Exec(t.Context(), "ip", "link", "del", ident.PortName(lab, cross)); err != nil {
			t.Fatal(err)
		}
		if err := b.host.RestartOVS(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		b.start(t)
		ready := time.Since(start)
		waitPing(t, lab, "r1", "192.168.82.3", 10*time.Second)
		t.Logf("hostB rebooted: agent ready after %v, traffic back after %v", ready, time.Since(start))
		if got := a.ping(t, "r1", "192.168.82.3"); got != 2 {
			t.Errorf("r1 → r3 after the reboot: %d/2", got)
		}
	})

	t.Run("a lab declared away leaves nothing", func(t *testing.T) {
		for _, h := range []*agentHost{a, b} {
			r := h.declareHost(t, wire.HostDeclaration{DeclaredLabs: []string{lab}, Generation: gen(10)})
			for _, n := range r.Nodes {
				if n.Status != wire.StatusRemoved {
					t.Errorf("%s: node %s %s", h.name, n.Name, n.Status)
				}
			}
			if tags, _ := h.bridgePorts(t); len(tags) != 0 {
				t.Errorf("%s: ports left %v", h.name, tags)
			}
			if devs := h.vxlanDevices(t); len(devs) != 0 {
				t.Errorf("%s: devices left %v", h.name, devs)
			}
		}
		for _, n := range []string{"r1", "r2", "r3"} {
			if netns.Exists(ident.NamespaceName(lab, n)) {
				t.Errorf("namespace of %s left", n)
			}
		}
	})
}
