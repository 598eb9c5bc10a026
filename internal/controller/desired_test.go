package controller

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// TestHeldStateFollowsOtherWriters: the leader keeps the desired state
// between cycles, and a write made through another handle on the same
// database (as a follower's API writes) reaches the agents at the next
// cycle all the same. A write to one lab's rows is read again alone: the
// hosts of other labs keep their declarations, digests and all.
func TestHeldStateFollowsOtherWriters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(ctx context.Context, st *store.Store) error
		// seen reports whether the hosts' last declarations carry the
		// write.
		seen func(last map[string]wire.HostDeclaration) bool
		// partial says the write is lab1's alone: hostC, which holds
		// only lab3, keeps its declaration.
		partial bool
	}{
		{
			name: "node changed",
			write: func(ctx context.Context, st *store.Store) error {
				return st.UpdateLab(ctx, "lab1", store.LabChange{ChangeNodes: []topology.Node{{Name: "r1", Kind: "linux", Exec: []string{"true"}}}})
			},
			seen: func(last map[string]wire.HostDeclaration) bool {
				i := slices.IndexFunc(last["hostA"].Nodes, func(n wire.DeclaredNode) bool { return n.Name == "r1" })
				return i >= 0 && slices.Equal(last["hostA"].Nodes[i].Exec, []string{"true"})
			},
			partial: true,
		},
		{
			name: "link added",
			write: func(ctx context.Context, st *store.Store) error {
				return st.UpdateLab(ctx, "lab1", store.LabChange{AddLinks: []topology.Link{
					{A: topology.Endpoint{Node: "r1", Iface: "eth3"}, B: topology.Endpoint{Node: "r3", Iface: "eth3"}}}})
			},
			seen: func(last map[string]wire.HostDeclaration) bool {
				return slices.ContainsFunc(last["hostB"].Tunnels, func(t wire.DeclaredTunnel) bool { return t.LinkID == "r1:eth3-r3:eth3" })
			},
			partial: true,
		},
		{
			name: "node moved",
			write: func(ctx context.Context, st *store.Store) error {
				return st.SetPlacements(ctx, "lab1", map[string]string{"r3": "hostA"})
			},
			seen: func(last map[string]wire.HostDeclaration) bool {
				return declares(last["hostA"], "r3") && !declares(last["hostB"], "r3")
			},
			partial: true,
		},
		{
			name: "lab stopping",
			write: func(ctx context.Context, st *store.Store) error {
				return st.SetLabState(ctx, "lab1", store.LabStopping, "")
			},
			seen: func(last map[string]wire.HostDeclaration) bool {
				return len(last["hostA"].Nodes)+len(last["hostB"].Nodes) == 0
			},
			partial: true,
		},
		{
			name: "lab deleted",
			write: func(ctx context.Context, st *store.Store) error {
				return st.DeleteLab(ctx, "lab1")
			},
			seen: func(last map[string]wire.HostDeclaration) bool {
				return len(last["hostA"].Nodes) == 0 && !slices.Contains(last["hostA"].DeclaredLabs, "lab1")
			},
		},
		{
			name: "lab created",
			write: func(ctx context.Context, st *store.Store) error {
				lab := topology.Lab{Name: "lab2", Nodes: []topology.Node{{Name: "s1", Kind: "linux"}}}
				if _, err := st.CreateLab(ctx, lab); err != nil {
					return err
				}
				if err := st.SetPlacements(ctx, "lab2", map[string]string{"s1": "hostB"}); err != nil {
					return err
				}
				return st.SetLabState(ctx, "lab2", store.LabStarting, "")
			},
			seen: func(last map[string]wire.HostDeclaration) bool { return declares(last["hostB"], "s1") },
		},
		{
			name: "data address changed",
			write: func(ctx context.Context, st *store.Store) error {
				h, err := st.Host(ctx, "hostB")
				if err != nil {
					return err
				}
				h.DataIP = "10.77.1.2"
				_, err = st.RegisterHost(ctx, h)
				return err
			},
			seen: func(last map[string]wire.HostDeclaration) bool {
				ts := last["hostA"].Tunnels
				return len(ts) > 0 && !slices.ContainsFunc(ts, func(t wire.DeclaredTunnel) bool { return t.RemoteIP != "10.77.1.2" })
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c, agents, dsn := twoLabs(t, "hostC")
			last := func() map[string]wire.HostDeclaration {
				out := map[string]wire.HostDeclaration{}
				for name, a := range agents {
					d := a.Declared()
					out[name] = d[len(d)-1]
				}
				return out
			}
			c.cycle(ctx, 1) // records what the deploy left, reads it back
			c.cycle(ctx, 1)
			held := c.held
			c.cycle(ctx, 1)
			if c.held == nil || c.held != held {
				t.Fatal("a cycle with nothing changed read the desired state again")
			}
			if tt.seen(last()) {
				t.Fatal("the hosts have the change before it was made")
			}

			other, _ := testStoreAt(t, dsn) // a follower's, say
			if err := tt.write(ctx, other); err != nil {
				t.Fatal(err)
			}
			c.cycle(ctx, 1)
			if !tt.seen(last()) {
				t.Errorf("the next cycle declared %+v: want the change made through the other handle", last())
			}
			if !tt.partial {
				return
			}
			if c.held == held || c.held.decls["hostC"] != held.decls["hostC"] {
				t.Errorf("lab1's change built hostC's declaration again: want lab1 read and its hosts declared again alone")
			}
			if got, want := last()["hostC"].Digest, held.decls["hostC"].Digest; got != want || want == "" {
				t.Errorf("hostC was declared with digest %q after lab1 changed, %q before: want it unchanged", got, want)
			}
			// The cycles that follow settle what that one allocated and
			// observed, lab1's alone, and keep hostC's declaration.
			c.cycle(ctx, 1)
			c.cycle(ctx, 1)
			if c.held.decls["hostC"] != held.decls["hostC"] || c.held.d.Whole != held.d.Whole {
				t.Errorf("the cycles after lab1's change read everything again or declared hostC again")
			}
			if got, want := last()["hostC"].Digest, held.decls["hostC"].Digest; got != want {
				t.Errorf("hostC was declared with digest %q in the end, %q before: want it unchanged", got, want)
			}
			// What the agents answered of lab1 since was observed: the
			// cycles observe the labs that changed, not none.
			v, err := c.store.LabView(ctx, "lab1")
			if err != nil {
				t.Fatal(err)
			}
			if v.State == store.LabStopping || v.State == store.LabStopped {
				return
			}
			if v.State != store.LabRunning {
				t.Errorf("lab1 is %s after the cycles: want running, as the agents hold it", v.State)
			}
			for _, ls := range v.Links {
				if ls.ActualState != store.LinkUp {
					t.Errorf("link %s is %s after the cycles: want up, as the agents hold it", ls.Name, ls.ActualState)
				}
			}
		})
	}
}

// twoLabs starts a controller on a fresh SQLite database, with hosts A, B
// and C answering as converged, and deploys lab1 (threeNodes: hostA and
// hostB) and lab3, whose t1 runs on t1Host and t2 on hostC. It returns the
// controller, the hosts' agents and the database's DSN, for another
// handle.
func twoLabs(t *testing.T, t1Host string) (*Controller, map[string]*agenttest.Converged, string) {
	t.Helper()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	st, log := testStoreAt(t, dsn)
	c, _ := newTestControllerOn(t, st, log, time.Minute)
	agents := map[string]*agenttest.Converged{"hostA": {}, "hostB": {}, "hostC": {}}
	serveHosts(t, c, map[string]http.Handler{"hostA": agents["hostA"], "hostB": agents["hostB"], "hostC": agents["hostC"]})
	applyAndWait(t, c, threeNodes)
	applyAndWait(t, c, topology.Lab{Name: "lab3", Nodes: []topology.Node{{Name: "t1", Kind: "linux", Host: t1Host}, {Name: "t2", Kind: "linux", Host: "hostC"}},
		Links: []topology.Link{{A: topology.Endpoint{Node: "t1", Iface: "eth1"}, B: topology.Endpoint{Node: "t2", Iface: "eth1"}}}})
	return c, agents, dsn
}

// declares reports whether a host declaration has the node.
func declares(d wire.HostDeclaration, node string) bool {
	return slices.ContainsFunc(d.Nodes, func(n wire.DeclaredNode) bool { return n.Name == node })
}

// TestPatchedDeclarationsMatchFullRead: after another handle's write to one
// lab, the next cycle builds again only the hosts that lab spans, and each
// of them gets the declaration a full reread builds, what other labs hold
// there included. lab3's management network has its hub on hostB and a
// spoke on hostC: when lab1 leaves hostB, hostB is built again without
// hostC, and must keep its end of lab3's tunnel to hostC.
func TestPatchedDeclarationsMatchFullRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(ctx context.Context, st *store.Store) error
	}{
		{
			name: "node moved off another lab's hub",
			write: func(ctx context.Context, st *store.Store) error {
				return st.SetPlacements(ctx, "lab1", map[string]string{"r3": "hostA"})
			},
		},
		{
			name: "node moved onto another lab's hub",
			write: func(ctx context.Context, st *store.Store) error {
				return st.SetPlacements(ctx, "lab1", map[string]string{"r1": "hostB"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c, agents, dsn := twoLabs(t, "hostB")
			c.cycle(ctx, 1)
			c.cycle(ctx, 1)
			held := c.held

			other, _ := testStoreAt(t, dsn)
			if err := tt.write(ctx, other); err != nil {
				t.Fatal(err)
			}
			c.cycle(ctx, 1)
			if c.held == nil || c.held == held || c.held.d.Whole != held.d.Whole {
				t.Fatal("lab1's change was not read again alone: this test needs the patched path")
			}
			d, err := other.Desired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(d.Mgmt, func(m store.MgmtSegment) bool { return m.LabID == "lab3" && m.Host == "hostC" && m.Hub == "hostB" }) {
				t.Fatalf("lab3's management segments %+v: want hostC's tunnel to the hub hostB", d.Mgmt)
			}
			want := hostDeclarations(d, nil)
			for host, a := range agents {
				got := a.Declared()
				decl := got[len(got)-1]
				decl.Generation, decl.Digest, decl.SameAs, decl.AnswerDigest = nil, "", "", ""
				if diff := cmp.Diff(*want[host], decl); diff != "" {
					t.Errorf("%s was declared, against a full reread (-want +got):\n%s", host, diff)
				}
			}
		})
	}
}
