package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/wire"
)

func newHostConverger(t *testing.T) (*converger, *fabrictest.Fake, *runtimetest.Fake) {
	t.Helper()
	f, rt := fabrictest.New(), runtimetest.New()
	return newConverger(f, rt, t.TempDir(), 1450, generations{maxJump: DefaultMaxGenerationJump}, quiet(), newMetrics()), f, rt
}

// node is a declared node with one interface per tag, eth1, eth2, ….
func node(lab, name string, tags ...int) wire.DeclaredNode {
	n := wire.DeclaredNode{LabID: lab, Name: name, Interfaces: []wire.DeclaredInterface{}}
	for i, tag := range tags {
		n.Interfaces = append(n.Interfaces, wire.DeclaredInterface{Name: "eth" + itoa(i + 1)[1:], VLANTag: tag})
	}
	return n
}

func declareHostT(t *testing.T, c *converger, req wire.HostDeclaration) wire.HostDeclarationResponse {
	t.Helper()
	if req.Generation == nil {
		req.Generation = current(c)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("test request invalid: %v", err)
	}
	resp, err := c.declareHost(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// summary renders a response's statuses as sorted "kind name status" lines.
func summary(resp wire.HostDeclarationResponse) []string {
	var out []string
	for _, r := range resp.Nodes {
		out = append(out, "node "+r.LabID+"/"+r.Name+" "+r.Status)
	}
	for _, r := range resp.Interfaces {
		out = append(out, "iface "+r.LabID+"/"+r.Node+":"+r.Interface+" "+r.Status)
	}
	for _, r := range resp.Tunnels {
		out = append(out, "tunnel "+r.LabID+"/"+r.LinkID+" "+r.Status)
	}
	slices.Sort(out)
	return out
}

// TestDeclareHost runs a sequence of host declarations against the fake
// bridge and runtime, each checked by its results, the host's state and
// what it cost.
func TestDeclareHost(t *testing.T) {
	t.Parallel()
	c, f, rt := newHostConverger(t)
	r1 := node("lab-1", "r1", 2100, 2200)
	r1.Exec = []string{"ip addr add 192.168.1.1/24 dev eth1"}
	r2 := node("lab-1", "r2", 2100)
	tn := tun("lab-1", 1)
	tn.LinkID = "r1:eth2-r9:eth1"
	tn.PortName = ident.PortName("lab-1", tn.LinkID)
	tn.ExpectedVLAN = 2200
	other := node("lab-2", "x1", 2300)
	base := wire.HostDeclaration{Nodes: []wire.DeclaredNode{r1, r2}, Tunnels: []wire.DeclaredTunnel{tn}, Generation: gen(1)}

	steps := []struct {
		name        string
		req         wire.HostDeclaration
		prepare     func()
		want        []string
		wantCreates int // CreateNode calls in this step
		wantApplies int
	}{
		{name: "from empty", req: base, wantCreates: 2, wantApplies: 1, want: []string{
			"iface lab-1/r1:eth1 created", "iface lab-1/r1:eth2 created", "iface lab-1/r2:eth1 created",
			"node lab-1/r1 created", "node lab-1/r2 created", "tunnel lab-1/r1:eth2-r9:eth1 created"}},
		{name: "the same again changes nothing", req: base, want: []string{
			"iface lab-1/r1:eth1 converged", "iface lab-1/r1:eth2 converged", "iface lab-1/r2:eth1 converged",
			"node lab-1/r1 converged", "node lab-1/r2 converged", "tunnel lab-1/r1:eth2-r9:eth1 converged"}},
		{name: "another lab is left alone", req: wire.HostDeclaration{Nodes: []wire.DeclaredNode{other}, Generation: gen(2)},
			wantCreates: 1, wantApplies: 1, want: []string{"iface lab-2/x1:eth1 created", "node lab-2/x1 created"}},
		{name: "a tag changes in place", req: func() wire.HostDeclaration {
			r := base
			r.Nodes = []wire.DeclaredNode{r1, node("lab-1", "r2", 2150)}
			r.Generation = gen(3)
			return r
		}(), wantApplies: 1, want: []string{
			"iface lab-1/r1:eth1 converged", "iface lab-1/r1:eth2 converged", "iface lab-1/r2:eth1 updated",
			"node lab-1/r1 converged", "node lab-1/r2 converged", "tunnel lab-1/r1:eth2-r9:eth1 converged"}},
		{name: "a killed node is made again", prepare: func() { rt.Kill("lab-1", "r2") }, req: func() wire.HostDeclaration {
			r := base
			r.Generation = gen(4)
			return r
		}(), wantCreates: 1, wantApplies: 2, want: []string{
			"iface lab-1/r1:eth1 converged", "iface lab-1/r1:eth2 converged", "iface lab-1/r2:eth1 created",
			"node lab-1/r1 converged", "node lab-1/r2 created", "tunnel lab-1/r1:eth2-r9:eth1 converged"}},
		{name: "an interface and a node no longer declared go", req: wire.HostDeclaration{
			Nodes: []wire.DeclaredNode{node("lab-1", "r1", 2100)}, DeclaredLabs: []string{"lab-1"}, Generation: gen(5)},
			wantCreates: 1, wantApplies: 1, want: []string{
				"iface lab-1/r1:eth1 converged", "iface lab-1/r1:eth2 removed", "iface lab-1/r2:eth1 removed",
				"node lab-1/r1 updated", "node lab-1/r2 removed", "tunnel lab-1/r1:eth2-r9:eth1 removed"}},
		{name: "a destroyed lab goes whole", req: wire.HostDeclaration{DeclaredLabs: []string{"lab-1", "lab-2"}, Generation: gen(6)},
			wantApplies: 1, want: []string{"iface lab-1/r1:eth1 removed", "iface lab-2/x1:eth1 removed", "node lab-1/r1 removed", "node lab-2/x1 removed"}},
	}
	for _, s := range steps {
		if s.prepare != nil {
			s.prepare()
		}
		creates, applies := rt.Creates(), len(f.Applies())
		resp := declareHostT(t, c, s.req)
		if diff := cmp.Diff(s.want, summary(resp)); diff != "" {
			t.Errorf("%s: results (-want +got):\n%s", s.name, diff)
		}
		if got := rt.Creates() - creates; got != s.wantCreates {
			t.Errorf("%s: %d CreateNode calls, want %d", s.name, got, s.wantCreates)
		}
		if got := len(f.Applies()) - applies; got != s.wantApplies {
			t.Errorf("%s: %d applies, want %d", s.name, got, s.wantApplies)
		}
		if *resp.ObservedGeneration != *s.req.Generation {
			t.Errorf("%s: observed generation %d", s.name, *resp.ObservedGeneration)
		}
	}
	if got := rt.Execs(); len(got) != 1 || !strings.Contains(got[0], "lab-1/r1: sh -c ip addr add") {
		t.Errorf("exec commands run %q: want r1's once, when it was made", got)
	}
	if f.Dump() != "" || rt.Dump() != "" {
		t.Errorf("host after the last step:\n%s\n%s\nwant nothing", f.Dump(), rt.Dump())
	}
}

// TestDeclareHostState checks the bridge's ports and tags after a
// declaration, and that a tunnel's port shares its node port's tag.
func TestDeclareHostState(t *testing.T) {
	t.Parallel()
	c, f, rt := newHostConverger(t)
	tn := tun("lab-1", 1)
	declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{node("lab-1", "r1", tn.ExpectedVLAN)}, Tunnels: []wire.DeclaredTunnel{tn}})
	p := ident.HostPortName("lab-1", "r1", "eth1")
	want := strings.Join([]string{
		"port " + p + " tag=3001 owner=lab-1//r1/eth1",
		"port " + tn.PortName + " tag=3001 owner=lab-1/" + tn.LinkID + "//",
		"device " + tn.PortName + " vni=50001 10.77.0.1->10.77.0.2 mtu=1450",
	}, "\n")
	got := f.Dump()
	// Dump sorts ports by name; compare as sets of lines.
	if diff := cmp.Diff(sortedLines(want), sortedLines(got)); diff != "" {
		t.Errorf("bridge (-want +got):\n%s", diff)
	}
	if rt.Dump() != "node lab-1/r1 eth1" {
		t.Errorf("runtime: %q", rt.Dump())
	}
}

func sortedLines(s string) []string {
	l := strings.Split(s, "\n")
	slices.Sort(l)
	return l
}

// TestDeclareHostFailures covers what must not lie or change: a node the
// runtime cannot make, an unreadable bridge, a stale generation, a port
// that is not netloom's.
func TestDeclareHostFailures(t *testing.T) {
	t.Parallel()
	t.Run("runtime fails", func(t *testing.T) {
		c, f, rt := newHostConverger(t)
		rt.FailCreate = map[string]error{"lab-1/r2": errors.New("no space")}
		resp := declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{node("lab-1", "r1", 2100), node("lab-1", "r2", 2100)}})
		want := []string{"iface lab-1/r1:eth1 created", "iface lab-1/r2:eth1 error", "node lab-1/r1 created", "node lab-1/r2 error"}
		if diff := cmp.Diff(want, summary(resp)); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if !strings.Contains(*resp.Nodes[1].Error, "no space") || resp.Interfaces[1].ActualVLAN != nil {
			t.Errorf("r2: %+v %+v, want the runtime's reason and no tag", resp.Nodes[1], resp.Interfaces[1])
		}
		if strings.Contains(f.Dump(), ident.HostPortName("lab-1", "r2", "eth1")) {
			t.Error("a port of a node that was not made is on the bridge")
		}
		// Held all the same: the next repair makes it.
		rt.FailCreate = nil
		if err := c.repair(t.Context(), "test"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.Dump(), ident.HostPortName("lab-1", "r2", "eth1")) {
			t.Error("repair did not make r2 once the runtime could")
		}
	})
	t.Run("bridge unreadable", func(t *testing.T) {
		c, f, rt := newHostConverger(t)
		declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{node("lab-1", "r1", 2100)}, Generation: gen(3)})
		before := f.Dump() + rt.Dump()
		f.ObserveErr = fabrictest.ErrDown
		resp := declareHostT(t, c, wire.HostDeclaration{DeclaredLabs: []string{"lab-1"}, Generation: gen(4)})
		if resp.Skipped == nil || *resp.ObservedGeneration != 3 {
			t.Errorf("skipped %v generation %d, want ovs_read_error and 3", resp.Skipped, *resp.ObservedGeneration)
		}
		f.ObserveErr = nil
		if after := f.Dump() + rt.Dump(); after != before {
			t.Errorf("an unreadable bridge changed the host:\n%s", after)
		}
	})
	t.Run("stale generation", func(t *testing.T) {
		c, f, _ := newHostConverger(t)
		declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{node("lab-1", "r1", 2100)}, Generation: gen(9)})
		n := len(f.Applies())
		if _, err := c.declareHost(t.Context(), wire.HostDeclaration{DeclaredLabs: []string{"lab-1"}, Generation: gen(8)}); !errors.Is(err, ErrStaleGeneration) {
			t.Fatalf("generation 8 after 9: %v, want ErrStaleGeneration", err)
		}
		if len(f.Applies()) != n {
			t.Error("a stale declaration wrote to the bridge")
		}
	})
	t.Run("port not netloom's", func(t *testing.T) {
		c, f, _ := newHostConverger(t)
		p := ident.HostPortName("lab-1", "r1", "eth1")
		f.SetPort(fabric.Port{Name: p, Tag: 7})
		resp := declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{node("lab-1", "r1", 2100)}})
		if resp.Interfaces[0].Status != wire.StatusError || !strings.Contains(f.Dump(), "tag=7") {
			t.Errorf("interface %+v; bridge %s: want an error and the port untouched", resp.Interfaces[0], f.Dump())
		}
	})
}

// TestRestoreRebuildsNodes is a reboot: the runtime and bridge lost
// everything, a new agent restores nodes, ports and tunnels from the cache.
func TestRestoreRebuildsNodes(t *testing.T) {
	t.Parallel()
	c, f, rt := newHostConverger(t)
	r1 := node("lab-1", "r1", 3001)
	r1.Exec = []string{"true"}
	declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{r1}, Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1)}, Generation: gen(5)})
	want := f.Dump() + "\n" + rt.Dump()

	f2, rt2 := fabrictest.New(), runtimetest.New()
	c2 := newConverger(f2, rt2, c.stateDir, 1450, generations{maxJump: DefaultMaxGenerationJump}, quiet(), newMetrics())
	if err := c2.restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f2.Dump() + "\n" + rt2.Dump(); got != want {
		t.Errorf("after restore:\n%s\nwant:\n%s", got, want)
	}
	if c2.generation != 5 || len(rt2.Execs()) != 1 {
		t.Errorf("generation %d, execs %v: want 5 and r1's exec run once more, on the new node", c2.generation, rt2.Execs())
	}
}

// TestRestoredLabsOutsideScopeGo restarts an agent from a cache that holds
// lab-2, which the controller destroyed while the agent was down: the first
// declaration with a generation does not name lab-2, and what the restore
// brought back of it goes, while lab-1 stays. A declaration without a
// generation (--accept-unfenced) does not scope the restore.
func TestRestoredLabsOutsideScopeGo(t *testing.T) {
	t.Parallel()
	r1, r2 := node("lab-1", "r1", 3001), node("lab-2", "r1", 3002)
	t1, t2 := tun("lab-1", 1), tun("lab-2", 2)
	tests := []struct {
		name     string
		declare  func(t *testing.T, c *converger)
		wantLab2 bool
	}{
		{name: "host declaration", declare: func(t *testing.T, c *converger) {
			declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{r1}, Tunnels: []wire.DeclaredTunnel{t1},
				DeclaredLabs: []string{"lab-1"}, Generation: gen(6)})
		}},
		{name: "tunnel declaration", declare: func(t *testing.T, c *converger) {
			declare(t, c, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}, DeclaredLabs: []string{"lab-1"}, Generation: gen(6)})
		}},
		{name: "unfenced declaration", wantLab2: true, declare: func(t *testing.T, c *converger) {
			if _, err := c.declare(t.Context(), wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}, DeclaredLabs: []string{"lab-1"}}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f, rt := newHostConverger(t)
			declareHostT(t, c, wire.HostDeclaration{Nodes: []wire.DeclaredNode{r1, r2}, Tunnels: []wire.DeclaredTunnel{t1, t2},
				DeclaredLabs: []string{"lab-1", "lab-2"}, Generation: gen(5)})
			restarted := newConverger(f, rt, c.stateDir, 1450,
				generations{maxJump: DefaultMaxGenerationJump, acceptUnfenced: true}, quiet(), newMetrics())
			if err := restarted.restore(t.Context()); err != nil {
				t.Fatal(err)
			}
			tt.declare(t, restarted)
			host := f.Dump() + "\n" + rt.Dump()
			for _, want := range []string{"port " + t1.PortName, "lab-1/r1"} {
				if !strings.Contains(host, want) {
					t.Errorf("lab-1 lost %s:\n%s", want, host)
				}
			}
			_, held := restarted.held.nodes[keyOf(r2)]
			for _, gone := range []string{"port " + t2.PortName, "lab-2/r1"} {
				if strings.Contains(host, gone) != tt.wantLab2 || held != tt.wantLab2 {
					t.Errorf("lab-2's %s on the host: %v, held: %v; want %v:\n%s", gone, strings.Contains(host, gone), held, tt.wantLab2, host)
				}
			}
			// A later restart restores only what the declaration left.
			if cf, err := readCache(c.stateDir); err != nil || slices.ContainsFunc(cf.Tunnels, func(t wire.DeclaredTunnel) bool { return t.LabID == "lab-2" }) != tt.wantLab2 {
				t.Errorf("cache %+v, %v", cf.Tunnels, err)
			}
		})
	}
}
