package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestMgmtNetwork: a lab split over two hosts gets containerlab's
// management network: every node eth0 with an address from the default
// subnet (mgmt-ipv4 honoured, none for network-mode none), each host an
// address on it from which it reaches its nodes, and one segment across
// the hosts; a host:IFACE endpoint is a veth into the node's host; a
// second lab gets the next free subnet, an overlapping one asked for is
// refused; destroy leaves no interface on the hosts.
func TestMgmtNetwork(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}})
	lab := c.Bed.ID()
	path := c.Ctl.Dir + "/mgmt.yaml"
	if err := writeFile(path, fmt.Sprintf(`name: %s
topology:
  nodes:
    r1: {host: hostA, exec: ["ip addr add 10.9.1.1/24 dev eth1"]}
    r2: {host: hostA, mgmt-ipv4: 172.20.20.50}
    r3: {host: hostB}
    r4: {host: hostB, network-mode: none}
  links:
    - endpoints: ["r1:eth1", "host:veth-r1"]
    - endpoints: ["r3:eth1", "r4:eth1"]
`, lab)); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	var v wire.LabView
	if !wait(t, 20*time.Second, func(ctx context.Context) bool {
		out, err := c.CLI(t, "lab", "show", lab, "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &v) != nil {
			return false
		}
		return v.State == "running"
	}) {
		t.Fatalf("lab not running: %s %q", v.State, v.StateError)
	}
	addr := map[string]string{}
	for _, n := range v.Nodes {
		addr[n.Name] = n.MgmtAddress
	}
	if want := map[string]string{"r1": "172.20.20.2", "r2": "172.20.20.50", "r3": "172.20.20.3", "r4": ""}; fmt.Sprint(addr) != fmt.Sprint(want) {
		t.Errorf("management addresses %v, want %v", addr, want)
	}
	if v.MgmtSubnet != "172.20.20.0/24" || len(v.Mgmt) != 2 || v.Mgmt[0].Address != "172.20.20.254/24" || v.Mgmt[1].Hub != "hostA" || v.Mgmt[1].Status != "up" {
		t.Errorf("management network %s %+v", v.MgmtSubnet, v.Mgmt)
	}

	// From its host, every node; and across the segment, the other host's.
	for _, p := range []struct{ host, node string }{{"hostA", "r1"}, {"hostA", "r2"}, {"hostB", "r3"}, {"hostA", "r3"}, {"hostB", "r1"}} {
		dst := netip.MustParseAddr(addr[p.node])
		if !wait(t, 10*time.Second, func(ctx context.Context) bool {
			n, err := c.Hosts[p.host].Ping(ctx, dst, 1)
			return err == nil && n == 1
		}) {
			t.Errorf("%s does not reach %s on its management address %s", p.host, p.node, dst)
		}
	}
	if !wait(t, 10*time.Second, func(ctx context.Context) bool { return ping(ctx, lab, "r2", addr["r3"]) }) {
		t.Errorf("r2 (hostA) does not reach r3 (hostB) on the management network")
	}
	if out, err := testbed.ExecIn(t.Context(), ident.NamespaceName(lab, "r4"), "ip", "-br", "link"); err != nil || strings.Contains(out, "eth0") {
		t.Errorf("r4 (network-mode none) interfaces: %v\n%s", err, out)
	}

	// host:veth-r1 is r1's eth1 seen from hostA.
	if _, err := c.Hosts["hostA"].Exec(t.Context(), "ip", "addr", "add", "10.9.1.2/24", "dev", "veth-r1"); err != nil {
		t.Fatal(err)
	}
	if !wait(t, 10*time.Second, func(ctx context.Context) bool {
		n, err := c.Hosts["hostA"].Ping(ctx, netip.MustParseAddr("10.9.1.1"), 1)
		return err == nil && n == 1
	}) {
		t.Errorf("hostA does not reach r1 through its host endpoint veth-r1")
	}

	show, err := c.CLI(t, "lab", "show", lab)
	if err != nil || !strings.Contains(show, "management network 172.20.20.0/24:") || !strings.Contains(show, "172.20.20.253/24") {
		t.Errorf("lab show: %v\n%s", err, show)
	}

	// A second lab takes the next subnet; one asking for an overlapping
	// subnet is refused, naming the lab that has it.
	second := c.Ctl.Dir + "/second.yaml"
	if err := writeFile(second, fmt.Sprintf("name: %s-2\ntopology:\n  nodes: {s1: {host: hostB}}\n", lab)); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", second); err != nil {
		t.Fatalf("apply the second lab: %v\n%s", err, out)
	}
	var v2 wire.LabView
	if out, err := c.CLI(t, "lab", "show", lab+"-2", "-o", "json"); err != nil || json.Unmarshal([]byte(out), &v2) != nil || v2.MgmtSubnet != "172.20.21.0/24" {
		t.Errorf("second lab's management subnet %q: %v", v2.MgmtSubnet, err)
	}
	third := c.Ctl.Dir + "/third.yaml"
	if err := writeFile(third, fmt.Sprintf("name: %s-3\nmgmt: {ipv4-subnet: 172.20.0.0/16}\ntopology:\n  nodes: {s1: {}}\n", lab)); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", third); err == nil || !strings.Contains(out, "overlaps 172.20.20.0/24, the management subnet of lab "+lab) {
		t.Errorf("an overlapping subnet: %v\n%s", err, out)
	}

	for _, l := range []string{lab, lab + "-2"} {
		if out, err := c.CLI(t, "lab", "destroy", l, "--delete"); err != nil {
			t.Fatalf("destroy %s: %v\n%s", l, err, out)
		}
	}
	for name, h := range c.Hosts {
		out, err := h.Exec(t.Context(), "ip", "-br", "link")
		if err != nil || strings.Contains(out, ident.MgmtIfacePrefix) || strings.Contains(out, "veth-r1") {
			t.Errorf("%s keeps interfaces after destroy: %v\n%s", name, err, out)
		}
	}
}
