package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
)

// BenchmarkPlace places 1000 nodes on 100 hosts.
func BenchmarkPlace(b *testing.B) {
	var nodes []topology.Node
	var links []topology.Link
	for i := range 1000 {
		nodes = append(nodes, topology.Node{Name: fmt.Sprintf("n%d", i)})
		if i > 0 {
			links = append(links, topology.Link{A: topology.Endpoint{Node: fmt.Sprintf("n%d", i-1), Iface: "eth1"}, B: topology.Endpoint{Node: fmt.Sprintf("n%d", i), Iface: "eth2"}})
		}
	}
	var hosts []string
	for i := range 100 {
		hosts = append(hosts, fmt.Sprintf("host%d", i))
	}
	for b.Loop() {
		if _, err := place(nodes, links, nil, nil, hosts, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeclarations allocates and builds the declarations of 100 hosts
// from 10 000 cross-host links.
func BenchmarkDeclarations(b *testing.B) {
	d := store.Desired{Labs: []store.Lab{{ID: "lab", Name: "lab", State: store.LabRunning}}}
	for i := range 100 {
		d.Hosts = append(d.Hosts, store.Host{Name: fmt.Sprintf("host%d", i), DataIP: fmt.Sprintf("10.0.0.%d", i+1)})
	}
	for i := range 10000 {
		a, z := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		d.Nodes = append(d.Nodes, store.LabNode{Lab: "lab", Node: store.Node{Name: a, PlacedOn: d.Hosts[i%100].Name}},
			store.LabNode{Lab: "lab", Node: store.Node{Name: z, PlacedOn: d.Hosts[(i+1)%100].Name}})
		d.Links = append(d.Links, store.LinkState{ID: fmt.Sprint(i), LabID: "lab", Name: a + ":eth1-" + z + ":eth1",
			SourceNode: a, SourceIface: "eth1", TargetNode: z, TargetIface: "eth1", DesiredState: "up"})
	}
	for b.Loop() {
		d := d
		d.Links = slices.Clone(d.Links)
		allocate(&d)
		if decls := hostDeclarations(d, nil); len(decls) != 100 {
			b.Fatal(len(decls))
		}
	}
}
