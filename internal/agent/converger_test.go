package agent

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestConverger(t *testing.T) (*converger, *fabrictest.Fake) {
	t.Helper()
	f := fabrictest.New()
	return newConverger(f, runtimetest.New(), t.TempDir(), 1450, generations{maxJump: DefaultMaxGenerationJump}, quiet(), newMetrics()), f
}

// tun is a declared tunnel of lab with link "r<i>…" and tag 3000+i.
func tun(lab string, i int) wire.DeclaredTunnel {
	link := ident.LinkName("r"+itoa(i)+":eth1", "s"+itoa(i)+":eth1")
	return wire.DeclaredTunnel{
		LinkID: link, LabID: lab, VNI: 50000 + i, LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2",
		ExpectedVLAN: 3000 + i, PortName: ident.PortName(lab, link),
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func gen(n int64) *int64 { return &n }

// current is the generation the agent applied last, for a declaration that
// does not test fencing: the same generation again is always taken.
func current(c *converger) *int64 { return gen(c.appliedGeneration()) }

func declare(t *testing.T, c *converger, req wire.DeclareStateRequest) wire.DeclareStateResponse {
	t.Helper()
	if req.Generation == nil {
		req.Generation = current(c)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("test request invalid: %v", err)
	}
	resp, err := c.declare(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func statuses(resp wire.DeclareStateResponse) []string {
	var s []string
	for _, r := range resp.Results {
		s = append(s, r.Status)
	}
	return s
}

// ownedOrphan puts on the bridge a tunnel port netloom made for lab, that no
// one declares now.
func ownedOrphan(f *fabrictest.Fake, lab, name string) {
	f.SetDevice(fabric.Device{Name: name, VNI: 99, Up: true, MTU: 1450})
	f.SetPort(fabric.Port{Name: name, Tag: 3999, Owner: fabric.Owner{Lab: lab, Link: "x:eth9-y:eth9"}})
}

// The agent-side acceptance cases of reference §7.3, on the fake driver.
// Where this design changes the outcome, the case says which W it fixes.
func TestDeclare(t *testing.T) {
	t.Parallel()
	type step struct {
		req          wire.DeclareStateRequest
		wantStatus   []string
		wantOrphans  []string
		wantNoApply  bool
		wantSkipped  bool
		checkPlanFor func(t *testing.T, p fabric.Plan)
	}
	t1, t2 := tun("lab-1", 1), tun("lab-1", 2)
	other := tun("lab-OTHER", 3)
	tests := []struct {
		name  string
		setup func(f *fabrictest.Fake)
		steps []step
	}{
		{name: "creates missing tunnels", steps: []step{{
			req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"},
			checkPlanFor: func(t *testing.T, p fabric.Plan) {
				if len(p.AddPorts) != 1 || p.AddPorts[0].Tag != t1.ExpectedVLAN || p.AddPorts[0].Owner != (fabric.Owner{Lab: "lab-1", Link: t1.LinkID}) {
					t.Errorf("plan adds %+v", p.AddPorts)
				}
			},
		}}},
		{name: "idempotent: converged with no writes", steps: []step{
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"}},
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"converged"}, wantNoApply: true},
		}},
		{name: "updates drifted vlan", steps: []step{
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"}},
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{withTag(t1, 3099)}}, wantStatus: []string{"updated"},
				checkPlanFor: func(t *testing.T, p fabric.Plan) {
					if p.Retag[t1.PortName] != 3099 || len(p.Devices) != 0 || len(p.AddPorts) != 0 {
						t.Errorf("plan %+v, want one retag only", p)
					}
				}},
		}},
		{name: "recreates on remote drift (W-10)", steps: []step{
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"}},
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{withRemote(t1, "10.77.0.9")}}, wantStatus: []string{"updated"},
				checkPlanFor: func(t *testing.T, p fabric.Plan) {
					if len(p.Devices) != 1 || p.Devices[0].Remote.String() != "10.77.0.9" {
						t.Errorf("plan devices %+v, want the device with the new remote", p.Devices)
					}
				}},
		}},
		{name: "mtu drift updated in place", steps: []step{
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"}},
			{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{withMTU(t1, 1400)}}, wantStatus: []string{"updated"}},
		}},
		{name: "removes owned orphans in scope",
			setup: func(f *fabrictest.Fake) { ownedOrphan(f, "lab-1", "vxlan-0rphan99") },
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"}, wantOrphans: []string{"vxlan-0rphan99"}}}},
		{name: "orphans scoped to declared labs",
			setup: func(f *fabrictest.Fake) { ownedOrphan(f, "lab-OTHER", "vxlan-0rphan99") },
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"created"}}}},
		{name: "empty declaration changes nothing",
			setup: func(f *fabrictest.Fake) { ownedOrphan(f, "lab-1", "vxlan-0rphan99") },
			steps: []step{{req: wire.DeclareStateRequest{}, wantNoApply: true}}},
		{name: "empty declaration with scope removes owned orphans",
			setup: func(f *fabrictest.Fake) { ownedOrphan(f, "lab-1", "vxlan-0rphan99") },
			steps: []step{{req: wire.DeclareStateRequest{DeclaredLabs: []string{"lab-1"}}, wantOrphans: []string{"vxlan-0rphan99"}}}},
		{name: "unowned ports are never orphans (rule 4)",
			setup: func(f *fabrictest.Fake) {
				f.SetDevice(fabric.Device{Name: "vxlan-0rphan99", VNI: 99})
				f.SetPort(fabric.Port{Name: "vxlan-0rphan99", Tag: 3999})
			},
			steps: []step{{req: wire.DeclareStateRequest{DeclaredLabs: []string{"lab-1"}}, wantNoApply: true}}},
		{name: "node ports are never orphans",
			setup: func(f *fabrictest.Fake) {
				f.SetPort(fabric.Port{Name: "nlp0123456789", Tag: 100, Owner: fabric.Owner{Lab: "lab-1", Node: "r1", Iface: "eth1"}})
			},
			steps: []step{{req: wire.DeclareStateRequest{DeclaredLabs: []string{"lab-1"}}, wantNoApply: true}}},
		{name: "placeholder is protected and shields its port",
			setup: func(f *fabrictest.Fake) { ownedOrphan(f, "lab-1", t2.PortName) },
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{withPlaceholder(t2)}}, wantStatus: []string{"protected"}, wantNoApply: true}}},
		{name: "empty addresses are protected",
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{withRemote(t1, "")}}, wantStatus: []string{"protected"}, wantNoApply: true}}},
		{name: "expected_vlan 0 is an error, never a trunk (W-21)",
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{withTag(t1, 0), t2}}, wantStatus: []string{"error", "created"},
				checkPlanFor: func(t *testing.T, p fabric.Plan) {
					for _, ap := range p.AddPorts {
						if ap.Name == t1.PortName || ap.Tag == 0 {
							t.Errorf("plan adds %+v", ap)
						}
					}
				}}}},
		{name: "an unowned port with a declared name is not taken over",
			setup: func(f *fabrictest.Fake) { f.SetPort(fabric.Port{Name: t1.PortName, Tag: 5}) },
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"error"}, wantNoApply: true}}},
		// The original deleted such a port and reported created; a missing
		// device is a fact here, not a guess from ofport -1 (W-6), so the port
		// stays and only the device is made again.
		{name: "broken port: device gone is recreated under the same port",
			setup: func(f *fabrictest.Fake) {
				f.SetPort(fabric.Port{Name: t1.PortName, Tag: t1.ExpectedVLAN, Ofport: -1, Owner: fabric.Owner{Lab: "lab-1", Link: t1.LinkID}})
			},
			steps: []step{{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}}, wantStatus: []string{"updated"},
				checkPlanFor: func(t *testing.T, p fabric.Plan) {
					if len(p.Devices) != 1 || len(p.DeletePorts) != 0 {
						t.Errorf("plan %+v, want only the device made", p)
					}
				}}}},
		{name: "two labs with the same link name (W-1)",
			steps: []step{
				{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{tunSameLink("lab-A"), tunSameLink("lab-B")}}, wantStatus: []string{"created", "created"}},
				{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{tunSameLink("lab-A")}}, wantStatus: []string{"converged"}, wantNoApply: true},
			}},
		{name: "labs out of scope keep their tunnels",
			steps: []step{
				{req: wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1, other}}, wantStatus: []string{"created", "created"}},
				{req: wire.DeclareStateRequest{DeclaredLabs: []string{"lab-1"}}, wantOrphans: []string{t1.PortName}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := newTestConverger(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			for i, s := range tt.steps {
				before := len(f.Applies())
				resp := declare(t, c, s.req)
				if diff := cmp.Diff(s.wantStatus, statuses(resp)); diff != "" {
					t.Errorf("step %d statuses (-want +got):\n%s\nresults %+v", i, diff, resp.Results)
				}
				if diff := cmp.Diff(s.wantOrphans, nilIfEmpty(resp.OrphansRemoved)); diff != "" {
					t.Errorf("step %d orphans (-want +got):\n%s", i, diff)
				}
				applies := f.Applies()[before:]
				if s.wantNoApply && len(applies) != 0 {
					t.Errorf("step %d wrote to the bridge: %+v", i, applies)
				}
				if !s.wantNoApply && len(applies) > 1 {
					t.Errorf("step %d applied %d plans, want one transaction", i, len(applies))
				}
				if s.checkPlanFor != nil {
					if len(applies) != 1 {
						t.Fatalf("step %d: %d plans applied, want 1", i, len(applies))
					}
					s.checkPlanFor(t, applies[0])
				}
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func withTag(t wire.DeclaredTunnel, tag int) wire.DeclaredTunnel      { t.ExpectedVLAN = tag; return t }
func withMTU(t wire.DeclaredTunnel, mtu int) wire.DeclaredTunnel      { t.MTU = mtu; return t }
func withRemote(t wire.DeclaredTunnel, ip string) wire.DeclaredTunnel { t.RemoteIP = ip; return t }
func withPlaceholder(t wire.DeclaredTunnel) wire.DeclaredTunnel       { t.Placeholder = true; return t }

func tunSameLink(lab string) wire.DeclaredTunnel {
	t := tun(lab, 1)
	t.PortName = ident.PortName(lab, t.LinkID)
	if lab == "lab-B" {
		t.VNI++ // one VNI per link; the link names are equal
	}
	return t
}

func TestDeclareSkipsWhenBridgeUnreadable(t *testing.T) {
	t.Parallel()
	c, f := newTestConverger(t)
	ownedOrphan(f, "lab-1", "vxlan-0rphan99")
	declare(t, c, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1)}, Generation: gen(1)})
	cacheBefore, err := os.ReadFile(filepath.Join(c.stateDir, cacheName))
	if err != nil {
		t.Fatal(err)
	}
	f.ObserveErr = fabrictest.ErrDown
	applies := len(f.Applies())
	resp := declare(t, c, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 2)}, DeclaredLabs: []string{"lab-1"}, Generation: gen(2)})
	if resp.Skipped == nil || *resp.Skipped != wire.SkippedOVSReadError || len(resp.Results) != 0 || len(resp.OrphansRemoved) != 0 {
		t.Fatalf("response %+v, want skipped ovs_read_error with no results", resp)
	}
	if *resp.ObservedGeneration != 1 {
		t.Errorf("observed generation %d, want 1: the skipped declaration was not applied", *resp.ObservedGeneration)
	}
	if len(f.Applies()) != applies {
		t.Error("a skipped declaration wrote to the bridge")
	}
	cacheAfter, _ := os.ReadFile(filepath.Join(c.stateDir, cacheName))
	if string(cacheAfter) != string(cacheBefore) {
		t.Error("a skipped declaration rewrote the cache")
	}
}

func TestDeclarePartialFailure(t *testing.T) {
	t.Parallel()
	c, f := newTestConverger(t)
	ok, bad := tun("lab-1", 1), tun("lab-1", 2)
	f.FailDevices = map[string]error{bad.PortName: errors.New("VNI already exists")}
	resp := declare(t, c, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{ok, bad}})
	if diff := cmp.Diff([]string{"created", "error"}, statuses(resp)); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if !strings.Contains(*resp.Results[1].Error, "VNI already exists") {
		t.Errorf("error %q does not say why", *resp.Results[1].Error)
	}
	f.FailDevices = nil
	// The failed tunnel is still wanted: a repair makes it.
	if err := c.repair(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Dump(), "port "+bad.PortName) {
		t.Errorf("repair did not make the failed tunnel:\n%s", f.Dump())
	}
}

// TestGenerationFencing sends declarations after one of generation 42 (or
// to a fresh agent): those the agent refuses change nothing, on the bridge
// or in the generation it holds.
func TestGenerationFencing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fresh    bool // the agent has taken no declaration yet
		unfenced bool // --accept-unfenced
		gen      *int64
		wantErr  error
		wantGen  int64
	}{
		{name: "newer", gen: gen(43), wantGen: 43},
		{name: "same again is a retry", gen: gen(42), wantGen: 42},
		{name: "older is stale", gen: gen(41), wantErr: ErrStaleGeneration, wantGen: 42},
		{name: "jump at the bound", gen: gen(42 + DefaultMaxGenerationJump), wantGen: 42 + DefaultMaxGenerationJump},
		{name: "jump past the bound", gen: gen(43 + DefaultMaxGenerationJump), wantErr: ErrGenerationRefused, wantGen: 42},
		{name: "the largest generation", gen: gen(math.MaxInt64), wantErr: ErrGenerationRefused, wantGen: 42},
		{name: "fresh agent takes a controller's years", fresh: true, gen: gen(MaxFirstGeneration), wantGen: MaxFirstGeneration},
		{name: "fresh agent refuses past 2^53", fresh: true, gen: gen(MaxFirstGeneration + 1), wantErr: ErrGenerationRefused},
		{name: "none refused by default", wantErr: ErrGenerationRefused, wantGen: 42},
		{name: "none taken with accept-unfenced", unfenced: true, wantGen: 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := fabrictest.New()
			c := newConverger(f, runtimetest.New(), t.TempDir(), 1450,
				generations{maxJump: DefaultMaxGenerationJump, acceptUnfenced: tt.unfenced}, quiet(), newMetrics())
			if !tt.fresh {
				declare(t, c, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1)}, Generation: gen(42)})
			}
			before, applies := f.Dump(), len(f.Applies())
			req := wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 2)}, DeclaredLabs: []string{"lab-1"}, Generation: tt.gen}
			resp, err := c.declare(t.Context(), req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if got := c.appliedGeneration(); got != tt.wantGen {
				t.Errorf("generation %d, want %d", got, tt.wantGen)
			}
			if tt.wantErr != nil {
				if len(f.Applies()) != applies || f.Dump() != before {
					t.Errorf("a refused declaration changed the bridge:\n%s", f.Dump())
				}
				return
			}
			if *resp.ObservedGeneration != tt.wantGen || !strings.Contains(f.Dump(), "port "+tun("lab-1", 2).PortName) {
				t.Errorf("observed generation %d, bridge:\n%s", *resp.ObservedGeneration, f.Dump())
			}
		})
	}
}

// TestRepairAndRestore drifts the fake host by hand and checks that repair
// restores exactly the declared state, and that a new converger restores it
// from the cache without removing anything.
func TestRepairAndRestore(t *testing.T) {
	t.Parallel()
	c, f := newTestConverger(t)
	tunnels := []wire.DeclaredTunnel{tun("lab-1", 1), tun("lab-1", 2), tun("lab-2", 3)}
	declare(t, c, wire.DeclareStateRequest{Tunnels: tunnels, Generation: gen(7)})
	want := f.Dump()

	f.DeletePort(tunnels[0].PortName)
	f.SetPort(fabric.Port{Name: tunnels[1].PortName, Tag: 5, Owner: fabric.Owner{Lab: "lab-1", Link: tunnels[1].LinkID}})
	if err := c.repair(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("after repair (-want +got):\n%s", diff)
	}

	ownedOrphan(f, "lab-1", "vxlan-0rphan99")
	f.DeletePort(tunnels[2].PortName)
	c2 := newConverger(f, runtimetest.New(), c.stateDir, 1450, generations{maxJump: DefaultMaxGenerationJump}, quiet(), newMetrics())
	if err := c2.restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := f.Dump()
	if !strings.Contains(got, "port "+tunnels[2].PortName) || !strings.Contains(got, "vxlan-0rphan99") {
		t.Errorf("restore: want the lost tunnel back and the orphan kept (no removal on restore):\n%s", got)
	}
	if c2.generation != 7 {
		t.Errorf("restored generation %d, want 7", c2.generation)
	}
}

// TestDeclareSequences replays a sequence of declarations in random orders
// and checks that the host always ends as the last declaration says.
func TestDeclareSequences(t *testing.T) {
	t.Parallel()
	reqs := []wire.DeclareStateRequest{
		{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1), tun("lab-1", 2)}},
		{Tunnels: []wire.DeclaredTunnel{withTag(tun("lab-1", 1), 3050)}, DeclaredLabs: []string{"lab-1"}},
		{Tunnels: []wire.DeclaredTunnel{tun("lab-2", 3)}},
		{DeclaredLabs: []string{"lab-2"}},
		{Tunnels: []wire.DeclaredTunnel{withRemote(tun("lab-1", 2), "10.77.0.5")}, DeclaredLabs: []string{"lab-1"}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		order := r.Perm(len(reqs))
		c, f := newTestConverger(t)
		for _, i := range order {
			declare(t, c, reqs[i])
		}
		// The state is the final one of each lab: replaying the labs' last
		// declarations on a fresh host must give the same dump.
		c2, f2 := newTestConverger(t)
		last := map[string]wire.DeclareStateRequest{}
		for _, i := range order {
			for _, lab := range labsOf(reqs[i]) {
				last[lab] = reqs[i]
			}
		}
		for _, lab := range []string{"lab-1", "lab-2"} {
			if req, ok := last[lab]; ok {
				declare(t, c2, scoped(req, lab))
			}
		}
		if diff := cmp.Diff(f2.Dump(), f.Dump()); diff != "" {
			t.Fatalf("order %v (-want +got):\n%s", order, diff)
		}
		_ = c
	}
}

func labsOf(r wire.DeclareStateRequest) []string {
	seen := map[string]bool{}
	var labs []string
	for _, l := range r.DeclaredLabs {
		if !seen[l] {
			seen[l] = true
			labs = append(labs, l)
		}
	}
	for _, t := range r.Tunnels {
		if !seen[t.LabID] {
			seen[t.LabID] = true
			labs = append(labs, t.LabID)
		}
	}
	return labs
}

// scoped is the part of a declaration about one lab.
func scoped(r wire.DeclareStateRequest, lab string) wire.DeclareStateRequest {
	out := wire.DeclareStateRequest{DeclaredLabs: []string{lab}}
	for _, t := range r.Tunnels {
		if t.LabID == lab {
			out.Tunnels = append(out.Tunnels, t)
		}
	}
	return out
}
