package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// serveHosts registers a host per agent double, hostX at 10.77.0.<n>.
func serveHosts(t *testing.T, c *Controller, agents map[string]http.Handler) map[string]*httptest.Server {
	t.Helper()
	srvs := map[string]*httptest.Server{}
	for i, name := range []string{"hostA", "hostB", "hostC", "hostD"} {
		h, ok := agents[name]
		if !ok {
			continue
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		srvs[name] = srv
		if _, err := c.store.RegisterHost(t.Context(), store.Host{Name: name, Address: srv.URL, DataIP: "10.77.0." + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	return srvs
}

// threeNodes is r1 and r2 on hostA, r3 on hostB, a same-host and a
// cross-host link.
var threeNodes = topology.Lab{Name: "lab1",
	Nodes: []topology.Node{{Name: "r1", Kind: "linux", Host: "hostA"}, {Name: "r2", Kind: "linux", Host: "hostA"}, {Name: "r3", Kind: "linux", Host: "hostB"}},
	Links: []topology.Link{
		{A: topology.Endpoint{Node: "r1", Iface: "eth1"}, B: topology.Endpoint{Node: "r2", Iface: "eth1"}},
		{A: topology.Endpoint{Node: "r2", Iface: "eth2"}, B: topology.Endpoint{Node: "r3", Iface: "eth1"}},
	}}

// applyAndWait applies a lab as the API does and waits for its deploy.
func applyAndWait(t *testing.T, c *Controller, lab topology.Lab) (wire.ApplyResponse, store.LabView) {
	t.Helper()
	resp, ro, err := c.apply(t.Context(), lab, false)
	if err != nil {
		t.Fatal(err)
	}
	c.deployLater(t.Context(), lab.Name, ro)
	c.bg.Wait()
	v, err := c.store.LabView(t.Context(), lab.Name)
	if err != nil {
		t.Fatal(err)
	}
	return resp, v
}

// TestDeployDeclares applies a lab against agent doubles: one declaration
// per host holds its nodes, interfaces and tunnels with the stored tags, the
// states come from the answers, a failing side makes the link an error
// naming the hosts, an unreachable host makes its objects unknown, never
// up, and an edit keeps placements and tags.
func TestDeployDeclares(t *testing.T) {
	t.Parallel()
	c, _ := newTestController(t, time.Minute)
	ctx := t.Context()
	a, b := &agenttest.Converged{}, &agenttest.Converged{}
	srvs := serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b})

	resp, v := applyAndWait(t, c, threeNodes)
	if len(resp.Plan.Nodes) != 3 || resp.Plan.Nodes[2] != (wire.PlannedNode{Name: "r3", Host: "hostB"}) ||
		resp.Plan.Links[1].Kind != wire.KindTunnel || strings.Join(resp.Plan.Links[1].Hosts, ",") != "hostA,hostB" || resp.Plan.Links[0].Kind != wire.KindSameHost {
		t.Errorf("plan %+v", resp.Plan)
	}
	if v.State != store.LabRunning || v.Progress != (wire.LabProgress{NodesUp: 3, Nodes: 3, LinksUp: 2, Links: 2}) {
		t.Fatalf("lab %+v", v)
	}
	same, cross := v.Links[0], v.Links[1]
	if *same.SourceTag != 2050 || *same.TargetTag != 2050 || *cross.SourceTag != 2051 || *cross.TargetTag != 2050 || cross.VerifiedAt == nil ||
		cross.Tunnel == nil || cross.Tunnel.IPB != "10.77.0.2" || !cross.SourceAttached || !cross.TargetAttached {
		t.Errorf("links %+v %+v", same, cross)
	}
	if len(v.Maps) != 7 || v.Nodes[0].VerifiedAt == nil || v.Nodes[0].RuntimeID != ident.NamespaceName("lab1", "r1") {
		t.Errorf("mappings %+v nodes %+v", v.Maps, v.Nodes)
	}
	da, db := a.Declared(), b.Declared()
	if len(da) != 1 || len(db) != 1 {
		t.Fatalf("declarations: hostA %d, hostB %d; want one each", len(da), len(db))
	}
	// r1, r2 and the host's own interface on the management network; the
	// link's tunnel and the management network's to hostB.
	if d := da[0]; len(d.Nodes) != 3 || len(d.Tunnels) != 2 || d.Tunnels[0].ExpectedVLAN != 2051 || d.Tunnels[0].RemoteIP != "10.77.0.2" ||
		strings.Join(d.DeclaredLabs, ",") != "lab1" || d.Generation == nil {
		t.Errorf("hostA's declaration %+v", d)
	}

	// hostB's bridge refuses: the cross-host link fails on hostB while hostA
	// holds its side.
	b.Fail("ovsdb: constraint violation")
	if _, err := c.converge(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	v, _ = c.store.LabView(ctx, "lab1")
	cross = v.Links[1]
	if cross.ActualState != store.LinkError || !strings.HasPrefix(cross.Error, store.PartialStatePrefix+"hostB: ") ||
		strings.Join(cross.PartialHosts, ",") != "hostA" || v.State != store.LabError ||
		!strings.Contains(v.StateError, "1 of 3 nodes and 1 of 2 links") || !strings.Contains(v.StateError, "management interface eth0") {
		t.Errorf("after hostB failed: link %+v, lab %s %q", cross, v.State, v.StateError)
	}

	// hostB unreachable: what it holds is unknown, not up.
	b.Fail("")
	srvs["hostB"].Close()
	if _, err := c.converge(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	v, _ = c.store.LabView(ctx, "lab1")
	cross = v.Links[1]
	if cross.ActualState != store.LinkUnknown || cross.Error != "hostB unreachable" || v.Nodes[2].Status != store.LinkUnknown ||
		v.State != store.LabError || v.Links[0].ActualState != store.LinkUp {
		t.Errorf("hostB unreachable: link %+v, r3 %+v, lab %s %q", cross, v.Nodes[2], v.State, v.StateError)
	}

	// An edit: r4 joins without a host; r1..r3 and their tags stay.
	b2 := &agenttest.Converged{}
	srv := httptest.NewServer(b2)
	t.Cleanup(srv.Close)
	if _, err := c.store.RegisterHost(ctx, store.Host{Name: "hostB", Address: srv.URL, DataIP: "10.77.0.2"}); err != nil {
		t.Fatal(err)
	}
	edit := threeNodes
	edit.Nodes = append(append([]topology.Node{}, threeNodes.Nodes...), topology.Node{Name: "r4", Kind: "linux"})
	edit.Links = append(append([]topology.Link{}, threeNodes.Links...), topology.Link{A: topology.Endpoint{Node: "r3", Iface: "eth2"}, B: topology.Endpoint{Node: "r4", Iface: "eth1"}})
	resp, after := applyAndWait(t, c, edit)
	if strings.Join(resp.Plan.AddNodes, ",") != "r4" || resp.Plan.Nodes[3].Host != "hostB" || resp.Plan.Nodes[3].From != "" {
		t.Errorf("edit plan %+v", resp.Plan)
	}
	if after.State != store.LabRunning {
		t.Fatalf("after the edit: %s %q", after.State, after.StateError)
	}
	for i, ls := range v.Links {
		if *after.Links[i].SourceTag != *ls.SourceTag || *after.Links[i].TargetTag != *ls.TargetTag {
			t.Errorf("link %s changed tags", ls.Name)
		}
	}
}

// TestApplyMoves pins a placed node to another host: the plan shows the
// move, the new host declares it, and the old host's next declaration no
// longer holds it.
func TestApplyMoves(t *testing.T) {
	t.Parallel()
	c, _ := newTestController(t, time.Minute)
	a, b, cc := &agenttest.Converged{}, &agenttest.Converged{}, &agenttest.Converged{}
	serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b, "hostC": cc})
	applyAndWait(t, c, threeNodes)
	moved := threeNodes
	moved.Nodes = []topology.Node{threeNodes.Nodes[0], threeNodes.Nodes[1], {Name: "r3", Kind: "linux", Host: "hostC"}}
	resp, v := applyAndWait(t, c, moved)
	if p := resp.Plan.Nodes[2]; p.Host != "hostC" || p.From != "hostB" {
		t.Errorf("plan of the move %+v", p)
	}
	if v.State != store.LabRunning || v.Nodes[2].PlacedOn != "hostC" || v.Links[1].TargetHost != "hostC" || v.Links[1].Tunnel.AgentB != "hostC" {
		t.Fatalf("after the move %+v", v)
	}
	last := b.Declared()[len(b.Declared())-1]
	if len(last.Nodes) != 0 || len(last.Tunnels) != 0 || strings.Join(last.DeclaredLabs, ",") != "lab1" {
		t.Errorf("hostB's last declaration %+v: want lab1 in scope and nothing of it", last)
	}
	if len(cc.Declared()) == 0 || len(cc.Declared()[len(cc.Declared())-1].Nodes) != 2 { // r3, and the host on the management network
		t.Errorf("hostC's declarations %+v", cc.Declared())
	}
}

// TestDestroy destroys a lab with hostB offline: hostA confirms, the lab
// waits for hostB, which gets the teardown when it registers again.
func TestDestroy(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	a, b := &agenttest.Converged{}, &agenttest.Converged{}
	srvs := serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b})
	applyAndWait(t, c, threeNodes)
	declaredB := len(b.Declared())
	if _, err := c.store.DB().ExecContext(t.Context(), `UPDATE hosts SET last_heartbeat = '2020-01-01 00:00:00+00:00' WHERE name = 'hostB'`); err != nil {
		t.Fatal(err)
	}
	var d wire.DeployResponse
	if code := do(t, srv, "POST", "/api/v1/labs/lab1/destroy", "api", "", "", &d); code != http.StatusAccepted || d.State != store.LabStopping ||
		!strings.HasSuffix(d.Error, "hostB") {
		t.Fatalf("destroy with hostB offline: %d %+v", code, d)
	}
	if last := a.Declared()[len(a.Declared())-1]; len(last.Nodes) != 0 || len(last.Tunnels) != 0 {
		t.Errorf("hostA still declared %+v", last)
	}
	// hostB registers: its declaration drops the lab, which stops.
	if len(b.Declared()) != declaredB {
		t.Error("hostB, offline, was declared to")
	}
	reg, _ := json.Marshal(wire.RegisterRequest{Name: "hostB", Address: srvs["hostB"].URL, DataIP: "10.77.0.2"})
	if code := do(t, srv, "POST", "/api/v1/hosts/register", "agent", "", string(reg), nil); code != 200 {
		t.Fatalf("register: %d", code)
	}
	c.bg.Wait()
	v, _ := c.store.LabView(t.Context(), "lab1")
	if v.State != store.LabStopped || v.Links[1].Tunnel != nil || v.Links[1].SourceTag != nil || v.Nodes[2].PlacedOn != "" {
		t.Errorf("after hostB returned: %+v", v)
	}
	if last := b.Declared()[len(b.Declared())-1]; len(last.Nodes) != 0 || strings.Join(last.DeclaredLabs, ",") != "lab1" {
		t.Errorf("hostB's declaration %+v", last)
	}
}

// oldAgent is an agent of the first stage: no /host/declare-state, and,
// when ancient, no /overlay/declare-state either.
type oldAgent struct {
	mu        sync.Mutex
	ancient   bool
	declared  []wire.DeclareStateRequest
	whitelist []wire.ReconcilePortsRequest
}

func (f *oldAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/overlay/declare-state" && !f.ancient:
		var req wire.DeclareStateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.declared = append(f.declared, req)
		resp := wire.DeclareStateResponse{OrphansRemoved: []string{"vxlan-0000dead"}, ObservedGeneration: req.Generation}
		for _, t := range req.Tunnels {
			resp.Results = append(resp.Results, wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName, Status: wire.StatusConverged})
		}
		_ = json.NewEncoder(w).Encode(resp)
	case r.URL.Path == "/overlay/reconcile-ports" && f.ancient:
		var req wire.ReconcilePortsRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.whitelist = append(f.whitelist, req)
		_ = json.NewEncoder(w).Encode(wire.ReconcilePortsResponse{RemovedPorts: []string{"vxlan-dead0000"}, ValidCount: len(req.ValidPortNames)})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"detail":"Not Found"}`))
	}
}

// TestConvergeOldAgents falls back by status code (W-19): an agent without
// host declarations gets its tunnels through /overlay/declare-state, an
// older one the whitelist; on both the nodes are reported as not made. A
// broken agent is reported without stopping the others.
func TestConvergeOldAgents(t *testing.T) {
	t.Parallel()
	c, _ := newTestController(t, time.Minute)
	ctx := t.Context()
	a, b := &oldAgent{}, &oldAgent{ancient: true}
	broken := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b, "hostC": broken})
	if _, _, err := c.apply(ctx, threeNodes, false); err != nil {
		t.Fatal(err)
	}
	conv, err := c.converge(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]wire.AgentConvergence{}
	for _, s := range conv.Agents {
		got[s.Host] = s
	}
	// The link's and the management network's tunnels; r1, r2 and the
	// host's own interface cannot be made there.
	if s := got["hostA"]; !s.Fallback || s.Error != "" || s.Results["converged"] != 2 || s.Results["error"] != 3 || len(s.OrphansRemoved) != 1 {
		t.Errorf("hostA (overlay only) %+v", s)
	}
	if s := got["hostB"]; !s.Fallback || s.Error != "" || len(s.OrphansRemoved) != 1 {
		t.Errorf("hostB (whitelist) %+v", s)
	}
	if s := got["hostC"]; s.Error == "" {
		t.Errorf("hostC (broken) %+v: want an error", s)
	}
	cross, mgmt := ident.PortName("lab1", "r2:eth2-r3:eth1"), ident.PortName("lab1", ident.MgmtLink("hostB"))
	if len(a.declared) != 1 || len(a.declared[0].Tunnels) != 2 || a.declared[0].Tunnels[0].PortName != cross || a.declared[0].Generation == nil {
		t.Errorf("hostA's tunnel declaration %+v", a.declared)
	}
	if len(b.whitelist) != 1 || strings.Join(b.whitelist[0].ValidPortNames, ",") != cross+","+mgmt {
		t.Errorf("hostB's whitelist %+v", b.whitelist)
	}
	v, _ := c.store.LabView(ctx, "lab1")
	if n := v.Nodes[0]; n.Status != store.LinkError || !strings.Contains(n.Error, "nodes cannot be made") {
		t.Errorf("r1 on an old agent %+v", n)
	}
	if v.State != store.LabError {
		t.Errorf("lab %s, want error", v.State)
	}
	if sum := c.summariesNow(); len(sum.Agents) != 3 || sum.Generation != conv.Generation {
		t.Errorf("summaries %+v", sum)
	}
}

// TestRegister catches the generation up with an agent ahead of the
// controller, and moves the tunnel rows and the peers' declarations to a
// host's new data address.
func TestRegister(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	a, b := &agenttest.Converged{}, &agenttest.Converged{}
	srvs := serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b})
	applyAndWait(t, c, threeNodes)
	reg, _ := json.Marshal(wire.RegisterRequest{Name: "hostB", Address: srvs["hostB"].URL, DataIP: "10.77.9.2", ObservedGeneration: 1000})
	if code := do(t, srv, "POST", "/api/v1/hosts/register", "agent", "", string(reg), nil); code != 200 {
		t.Fatalf("register: %d", code)
	}
	c.bg.Wait()
	last := a.Declared()[len(a.Declared())-1]
	if *last.Generation <= 1000 || len(last.Tunnels) != 2 || last.Tunnels[0].RemoteIP != "10.77.9.2" || last.Tunnels[1].RemoteIP != "10.77.9.2" {
		t.Errorf("hostA's declaration after hostB moved: generation %d, tunnels %+v", *last.Generation, last.Tunnels)
	}
	v, _ := c.store.LabView(t.Context(), "lab1")
	if tun := v.Links[1].Tunnel; tun.IPB != "10.77.9.2" || v.State != store.LabRunning {
		t.Errorf("tunnel row %+v, lab %s", tun, v.State)
	}
	// A heartbeat that reports a later generation (the database was
	// restored under a running agent) moves the counter past it, and the
	// host is declared to at once.
	before := len(b.Declared())
	hb, _ := json.Marshal(wire.HeartbeatRequest{ObservedGeneration: 5000})
	if code := do(t, srv, "POST", "/api/v1/hosts/hostB/heartbeat", "agent", "", string(hb), nil); code != 200 {
		t.Fatalf("heartbeat: %d", code)
	}
	c.bg.Wait()
	if got := b.Declared(); len(got) != before+1 || *got[len(got)-1].Generation <= 5000 {
		t.Errorf("after a heartbeat at generation 5000: %d declarations more, last %+v", len(got)-before, got[len(got)-1].Generation)
	}
	if code := do(t, srv, "POST", "/api/v1/hosts/hostB/heartbeat", "agent", "", "", nil); code != 200 {
		t.Errorf("a heartbeat without a body (the original's agents): %d", code)
	}
}

// TestApplyRemakesChangedNodes changes a node's exec: its host gets one
// declaration without it (removed) and one with it (made again, so the new
// exec runs); the other host is left alone.
func TestApplyRemakesChangedNodes(t *testing.T) {
	t.Parallel()
	c, _ := newTestController(t, time.Minute)
	a, b := &agenttest.Converged{}, &agenttest.Converged{}
	serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b})
	applyAndWait(t, c, threeNodes)
	before := len(a.Declared())
	changed := threeNodes
	changed.Nodes = []topology.Node{{Name: "r1", Kind: "linux", Host: "hostA", Exec: []string{"ip link set eth1 up"}}, threeNodes.Nodes[1], threeNodes.Nodes[2]}
	resp, v := applyAndWait(t, c, changed)
	if strings.Join(resp.Plan.ChangeNodes, ",") != "r1" || v.State != store.LabRunning {
		t.Fatalf("plan %+v, lab %s %q", resp.Plan, v.State, v.StateError)
	}
	got := a.Declared()[before:]
	if len(got) != 2 || len(got[0].Nodes) != 2 || got[0].Nodes[0].Name != "r2" || got[0].Nodes[1].Name != wire.HostNode || len(got[1].Nodes) != 3 ||
		strings.Join(got[1].Nodes[0].Exec, ";") != "ip link set eth1 up" {
		t.Errorf("hostA's declarations after the change: %+v", got)
	}
}

// slowAgent answers like agenttest.Converged, after a delay.
type slowAgent struct {
	agenttest.Converged
	delay time.Duration
}

func (s *slowAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.delay)
	s.Converged.ServeHTTP(w, r)
}

// TestDeployOutlivesItsClient gives up on a deploy request before the
// agents answer: the deploy runs to the end anyway.
func TestDeployOutlivesItsClient(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	slow := &slowAgent{delay: 300 * time.Millisecond}
	serveHosts(t, c, map[string]http.Handler{"hostA": slow, "hostB": slow})
	if _, err := c.store.CreateLab(t.Context(), threeNodes); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/v1/labs/lab1/deploy", nil)
	req.Header.Set("Authorization", "Bearer api")
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the deploy answered before the agents did")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := c.store.LabView(t.Context(), "lab1")
		if err != nil {
			t.Fatal(err)
		}
		if v.State == store.LabRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab %s %q after its client left", v.State, v.StateError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stuckAgent answers like an agent whose runtime cannot remove node r1 of
// lab1 while stuck is set, and like a converged one otherwise.
type stuckAgent struct {
	agenttest.Converged
	stuck atomic.Bool
}

func (s *stuckAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.stuck.Load() || r.URL.Path != "/host/declare-state" {
		s.Converged.ServeHTTP(w, r)
		return
	}
	var req wire.HostDeclaration
	_ = json.NewDecoder(r.Body).Decode(&req)
	why := "delete netns nl-lab1-r1: device or resource busy"
	_ = json.NewEncoder(w).Encode(wire.HostDeclarationResponse{ObservedGeneration: req.Generation,
		Nodes: []wire.NodeStatus{{LabID: "lab1", Name: "r1", Status: wire.StatusError, Error: &why}}})
}

// TestDestroyWaitsForRemoval: a lab whose node a host could not remove
// stays stopping with the agent's reason, and stops once a later round
// removes it.
func TestDestroyWaitsForRemoval(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	a := &stuckAgent{}
	serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": &agenttest.Converged{}})
	applyAndWait(t, c, threeNodes)
	a.stuck.Store(true)
	var d wire.DeployResponse
	do(t, srv, "POST", "/api/v1/labs/lab1/destroy", "api", "", "", &d)
	c.bg.Wait()
	v, _ := c.store.LabView(t.Context(), "lab1")
	if v.State != store.LabStopping || !strings.Contains(v.StateError, "node r1 not removed: delete netns") {
		t.Fatalf("with r1 not removed: %s (%s), want stopping with the agent's reason", v.State, v.StateError)
	}
	a.stuck.Store(false)
	if _, err := c.converge(t.Context(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ = c.store.LabView(t.Context(), "lab1"); v.State != store.LabStopped {
		t.Errorf("after a round that removed r1: %s (%s), want stopped", v.State, v.StateError)
	}
}
