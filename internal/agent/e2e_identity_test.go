package agent_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestNodeNamesDoNotCollide deploys lab "<id>-a" with node x and lab
// "<id>" with node a-x on one host, whose names joined read the same, each
// with a link to a second node: they get namespaces of their own, and
// destroying either lab leaves the other's nodes there, passing traffic.
// Then a namespace at a node's name that netloom did not mark is neither
// adopted nor deleted, and the error names it.
func TestNodeNamesDoNotCollide(t *testing.T) {
	a := newAgentHost(t)
	labA, labB := a.lab+"-a", a.lab // both named after the bed: their namespaces go with it
	pair := func(lab, n1, n2, subnet string, tag int) []wire.DeclaredNode {
		iface := func(addr string) []wire.DeclaredInterface {
			return []wire.DeclaredInterface{{Name: "eth1", VLANTag: tag, Addresses: []string{subnet + addr + "/24"}}}
		}
		return []wire.DeclaredNode{{LabID: lab, Name: n1, Interfaces: iface(".1")}, {LabID: lab, Name: n2, Interfaces: iface(".2")}}
	}
	nodesA, nodesB := pair(labA, "x", "y", "192.168.91", 2100), pair(labB, "a-x", "b", "192.168.92", 2200)
	ping := func(t *testing.T, lab, from, dst string) {
		t.Helper()
		got, err := testbed.PingFrom(t.Context(), ident.NamespaceName(lab, from), netip.MustParseAddr(dst), 2)
		if err != nil || got != 2 {
			t.Errorf("%s/%s → %s: %d/2 replies, %v", lab, from, dst, got, err)
		}
	}
	exists := func(t *testing.T, lab, node string, want bool) {
		t.Helper()
		if got := netns.Exists(ident.NamespaceName(lab, node)); got != want {
			t.Errorf("namespace of %s/%s exists: %v, want %v", lab, node, got, want)
		}
	}
	g := int64(0)
	declare := func(t *testing.T, labs []string, nodes ...wire.DeclaredNode) wire.HostDeclarationResponse {
		t.Helper()
		g++
		return a.declareHost(t, wire.HostDeclaration{Generation: &g, DeclaredLabs: labs, Nodes: nodes})
	}

	t.Run("both labs deployed", func(t *testing.T) {
		r := declare(t, []string{labA, labB}, append(nodesA, nodesB...)...)
		ids := map[string]bool{}
		for _, n := range r.Nodes {
			if n.Status != wire.StatusCreated || ids[n.RuntimeID] {
				t.Errorf("node %s/%s: %s, runtime id %q (seen: %v)", n.LabID, n.Name, n.Status, n.RuntimeID, ids[n.RuntimeID])
			}
			ids[n.RuntimeID] = true
		}
		if ident.NamespaceName(labA, "x") == ident.NamespaceName(labB, "a-x") || len(ids) != 4 {
			t.Fatalf("runtime ids %v: want 4 distinct", ids)
		}
		ping(t, labA, "x", "192.168.91.2")
		ping(t, labB, "a-x", "192.168.92.2")
	})

	t.Run("destroying the first leaves the second", func(t *testing.T) {
		declare(t, []string{labA})
		exists(t, labA, "x", false)
		exists(t, labB, "a-x", true)
		ping(t, labB, "a-x", "192.168.92.2")
	})

	t.Run("destroying the second leaves the first", func(t *testing.T) {
		declare(t, []string{labA}, nodesA...)
		declare(t, []string{labB})
		exists(t, labB, "a-x", false)
		exists(t, labA, "x", true)
		ping(t, labA, "x", "192.168.91.2")
	})

	t.Run("an unmarked namespace is neither adopted nor deleted", func(t *testing.T) {
		squatter := ident.NamespaceName(labB, "a-x")
		if err := netns.Create(squatter); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(squatter) })
		r := declare(t, []string{labB}, nodesB...)
		for _, n := range r.Nodes {
			if n.Name == "a-x" && (n.Status != wire.StatusError || n.Error == nil || !strings.Contains(*n.Error, squatter)) {
				t.Errorf("node a-x over an unmarked %s: %s %v, want an error naming it", squatter, n.Status, n.Error)
			}
		}
		r = declare(t, []string{labB})
		for _, n := range r.Nodes {
			if n.Name == "a-x" && (n.Status != wire.StatusError || n.Error == nil || !strings.Contains(*n.Error, squatter)) {
				t.Errorf("removing node a-x: %s %v, want an error naming %s", n.Status, n.Error, squatter)
			}
		}
		if !netns.Exists(squatter) {
			t.Errorf("%s was deleted", squatter)
		}
		ping(t, labA, "x", "192.168.91.2")
	})
}
