package controller

import (
	"fmt"
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
		if _, err := place(nodes, links, hosts, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeclarations builds the declarations of 100 hosts from 10 000
// cross-host links.
func BenchmarkDeclarations(b *testing.B) {
	var hosts []string
	for i := range 100 {
		hosts = append(hosts, fmt.Sprintf("host%d", i))
	}
	var links []store.LinkState
	for i := range 10000 {
		a, z := hosts[i%100], hosts[(i+1)%100]
		tag := 2050 + i%1900
		links = append(links, store.LinkState{ID: fmt.Sprint(i), LabID: "lab", Name: fmt.Sprintf("a%d:eth1-b%d:eth1", i, i),
			DesiredState: "up", ActualState: "up", CrossHost: true, SourceHost: a, TargetHost: z, SourceTag: &tag, TargetTag: &tag,
			Tunnel: &store.Tunnel{VNI: 10000 + i, AgentA: a, IPA: "10.0.0.1", AgentB: z, IPB: "10.0.0.2", Status: "active", PortName: fmt.Sprintf("vxlan-%08x", i)}})
	}
	for b.Loop() {
		if d := declarations(hosts, nil, links); len(d) != 100 {
			b.Fatal(len(d))
		}
	}
}
