package controller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

func tag(n int) *int { return &n }

func crossLink(lab, name, state string, tun *store.Tunnel, src, dst *int) store.LinkState {
	return store.LinkState{ID: lab + "/" + name, LabID: lab, Name: name, DesiredState: "up", ActualState: state, CrossHost: true,
		SourceHost: "hostA", TargetHost: "hostB", SourceTag: src, TargetTag: dst, Tunnel: tun}
}

// The payload cases of reference §7.1, on the pure builder.
func TestDeclarations(t *testing.T) {
	t.Parallel()
	active := &store.Tunnel{VNI: 50000, AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.0.2", Status: "active", PortName: "vxlan-11111111"}
	cleanup := &store.Tunnel{VNI: 50001, AgentA: "hostA", IPA: "10.0.0.1", AgentB: "hostB", IPB: "10.0.0.2", Status: "cleanup", PortName: "vxlan-22222222"}
	tests := []struct {
		name   string
		hosts  []string
		placed []store.Placed
		links  []store.LinkState
		want   map[string]*wire.DeclareStateRequest
	}{
		{"one tunnel, both sides mirrored, tags from the link state",
			[]string{"hostA", "hostB"}, nil,
			[]store.LinkState{crossLink("lab1", "a:eth1-b:eth1", "up", active, tag(3050), tag(3060))},
			map[string]*wire.DeclareStateRequest{
				"hostA": {Tunnels: []wire.DeclaredTunnel{{LinkID: "a:eth1-b:eth1", LabID: "lab1", VNI: 50000, LocalIP: "10.0.0.1", RemoteIP: "10.0.0.2", ExpectedVLAN: 3050, PortName: "vxlan-11111111"}}, DeclaredLabs: []string{"lab1"}},
				"hostB": {Tunnels: []wire.DeclaredTunnel{{LinkID: "a:eth1-b:eth1", LabID: "lab1", VNI: 50000, LocalIP: "10.0.0.2", RemoteIP: "10.0.0.1", ExpectedVLAN: 3060, PortName: "vxlan-11111111"}}, DeclaredLabs: []string{"lab1"}},
			}},
		{"inactive tunnels are not declared; every online host still gets a declaration",
			[]string{"hostA", "hostB", "hostC"}, nil,
			[]store.LinkState{crossLink("lab1", "a:eth1-b:eth1", "up", cleanup, tag(1), tag(2))},
			map[string]*wire.DeclareStateRequest{
				"hostA": {Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: []string{}},
				"hostB": {Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: []string{}},
				"hostC": {Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: []string{}},
			}},
		{"labs from placements",
			[]string{"hostA", "hostB"}, []store.Placed{{Lab: "lab1", Host: "hostA"}}, nil,
			map[string]*wire.DeclareStateRequest{
				"hostA": {Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: []string{"lab1"}},
				"hostB": {Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: []string{}},
			}},
		{"in-progress link is a placeholder on both hosts (W-4)",
			[]string{"hostA", "hostB"}, nil,
			[]store.LinkState{crossLink("lab1", "a:eth1-b:eth1", store.LinkCreating, nil, nil, nil)},
			map[string]*wire.DeclareStateRequest{
				"hostA": {Tunnels: []wire.DeclaredTunnel{{LinkID: "a:eth1-b:eth1", LabID: "lab1", PortName: ident.PortName("lab1", "a:eth1-b:eth1"), Placeholder: true}}, DeclaredLabs: []string{"lab1"}},
				"hostB": {Tunnels: []wire.DeclaredTunnel{{LinkID: "a:eth1-b:eth1", LabID: "lab1", PortName: ident.PortName("lab1", "a:eth1-b:eth1"), Placeholder: true}}, DeclaredLabs: []string{"lab1"}},
			}},
		{"a partial-state link with an active tunnel is declared; an offline host gets nothing",
			[]string{"hostA"}, nil,
			[]store.LinkState{crossLink("lab1", "a:eth1-b:eth1", store.LinkError, active, tag(3001), nil)},
			map[string]*wire.DeclareStateRequest{
				"hostA": {Tunnels: []wire.DeclaredTunnel{{LinkID: "a:eth1-b:eth1", LabID: "lab1", VNI: 50000, LocalIP: "10.0.0.1", RemoteIP: "10.0.0.2", ExpectedVLAN: 3001, PortName: "vxlan-11111111"}}, DeclaredLabs: []string{"lab1"}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, declarations(tt.hosts, tt.placed, tt.links)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// declareAgent is an agent double for convergence: it answers declare-state
// with a result per tunnel, or 404 like an agent without the endpoint, or
// 500; it records what it got.
type declareAgent struct {
	mu       sync.Mutex
	mode     string // "ok", "old" or "broken"
	status   string
	orphans  []string
	declared []wire.DeclareStateRequest
	whitelst []wire.ReconcilePortsRequest
}

func (f *declareAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/overlay/declare-state" && f.mode == "ok":
		var req wire.DeclareStateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.declared = append(f.declared, req)
		resp := wire.DeclareStateResponse{OrphansRemoved: f.orphans, ObservedGeneration: req.Generation}
		for _, t := range req.Tunnels {
			resp.Results = append(resp.Results, wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName, Status: f.status})
		}
		_ = json.NewEncoder(w).Encode(resp)
	case r.URL.Path == "/overlay/reconcile-ports" && f.mode == "old":
		var req wire.ReconcilePortsRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.whitelst = append(f.whitelst, req)
		_ = json.NewEncoder(w).Encode(wire.ReconcilePortsResponse{RemovedPorts: []string{"vxlan-dead0000"}, ValidCount: len(req.ValidPortNames)})
	case f.mode == "broken":
		w.WriteHeader(http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"detail":"Not Found"}`))
	}
}

// TestConverge runs convergence against agent doubles: flags per side,
// orphans reported, the 404 fallback by status code (W-19), a broken agent
// reported without stopping the others, an offline agent not called.
func TestConverge(t *testing.T) {
	t.Parallel()
	c, _ := newTestController(t, time.Minute)
	ctx := t.Context()
	agents := map[string]*declareAgent{
		"hostA": {mode: "ok", status: "converged", orphans: []string{"vxlan-0a", "vxlan-0b"}},
		"hostB": {mode: "old"},
		"hostC": {mode: "broken"},
	}
	for name, f := range agents {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		if err := c.store.RegisterHost(ctx, store.Host{Name: name, Address: srv.URL, DataIP: "10.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	lab := topology.Lab{Name: "lab1", Nodes: []topology.Node{{Name: "r1", Kind: "linux"}, {Name: "r2", Kind: "linux"}},
		Links: []topology.Link{{A: topology.Endpoint{Node: "r1", Iface: "eth1"}, B: topology.Endpoint{Node: "r2", Iface: "eth1"}}}}
	if _, err := c.store.CreateLab(ctx, lab); err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetPlacements(ctx, "lab1", map[string]string{"r1": "hostA", "r2": "hostB"}); err != nil {
		t.Fatal(err)
	}
	v, _ := c.store.LabView(ctx, "lab1")
	ls := v.Links[0]
	if err := c.store.SetLinkCreating(ctx, ls.ID, "hostA", "hostB"); err != nil {
		t.Fatal(err)
	}
	vni, _ := c.store.AllocateVNI(ctx, ls.ID, "lab1", ls.Name)
	if err := c.store.SetCrossHostUp(ctx, store.CrossHostUp{LinkStateID: ls.ID, LabID: "lab1", LinkName: ls.Name, VNI: vni,
		SourceTag: 2050, TargetTag: 2051, SourceHost: "hostA", SourceIP: "10.0.0.1", TargetHost: "hostB", TargetIP: "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetAttachments(ctx, []store.Attachment{{LinkStateID: ls.ID, Source: true, Attached: false}}); err != nil {
		t.Fatal(err)
	}
	// hostD is registered but silent: offline.
	if err := c.store.RegisterHost(ctx, store.Host{Name: "hostD", Address: "http://127.0.0.1:1", DataIP: "10.0.0.4"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.DB().ExecContext(ctx, `UPDATE hosts SET last_heartbeat = '2020-01-01 00:00:00+00:00' WHERE name = 'hostD'`); err != nil {
		t.Fatal(err)
	}

	resp, err := c.converge(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]wire.AgentConvergence{}
	for _, a := range resp.Agents {
		got[a.Host] = a
	}
	if len(got) != 3 {
		t.Fatalf("agents %v, want hostA, hostB and hostC (hostD is offline)", resp.Agents)
	}
	if a := got["hostA"]; a.Results["converged"] != 1 || len(a.OrphansRemoved) != 2 || a.Error != "" {
		t.Errorf("hostA summary %+v", a)
	}
	if b := got["hostB"]; !b.Fallback || b.Error != "" || len(b.OrphansRemoved) != 1 {
		t.Errorf("hostB (old agent) summary %+v", b)
	}
	if len(agents["hostB"].whitelst) != 1 || strings.Join(agents["hostB"].whitelst[0].ValidPortNames, ",") != ident.PortName("lab1", ls.Name) {
		t.Errorf("whitelist call %+v, want the tunnel's port name", agents["hostB"].whitelst)
	}
	if cc := got["hostC"]; cc.Error == "" {
		t.Errorf("hostC (broken) summary %+v: want an error", cc)
	}
	req := agents["hostA"].declared[0]
	if *req.Generation != resp.Generation || len(req.Tunnels) != 1 || req.Tunnels[0].ExpectedVLAN != 2050 {
		t.Errorf("hostA got %+v", req)
	}
	v, _ = c.store.LabView(ctx, "lab1")
	if !v.Links[0].SourceAttached {
		t.Error("hostA's converged result did not set the source side's attached flag")
	}
	again, _ := c.converge(ctx, map[string]bool{"hostA": true})
	if again.Generation <= resp.Generation || len(again.Agents) != 1 {
		t.Errorf("second convergence %+v: want a higher generation, hostA only", again)
	}
	if sum := c.summariesNow(); len(sum.Agents) != 3 || sum.Generation != again.Generation {
		t.Errorf("summaries %+v", sum)
	}
}
