package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// TestBGPOverOVSTunnels deploys two FRR routers on two hosts whose agents
// make tunnels as OVS's own VXLAN ports (--tunnel-ports ovs) and asks FRR
// what it sees: the eBGP session over the cross-host link Established,
// which takes TCP across the tunnel, each router's loopback learned by BGP,
// and a ping between the loopbacks over the learned routes. No kernel
// VXLAN device is made.
func TestBGPOverOVSTunnels(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}, OVSTunnels: true,
		DockerHosts: []string{"hostA", "hostB"}, Images: []string{"frr=quay.io/frrouting/frr:10.2.1"}})
	file, err := filepath.Abs(filepath.Join("testdata", "bgp", "bgp.clab.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", file); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = c.CLI(t, "lab", "destroy", "bgp", "--delete") })
	hostOf := map[string]string{"router1": "hostA", "router2": "hostB"}
	vtysh := func(ctx context.Context, node, cmd string) (string, error) {
		return c.Dockers[hostOf[node]].CLI(ctx, "exec", ident.NamespaceName("bgp", node), "vtysh", "-c", cmd)
	}
	var last string
	learned := wait(t, 90*time.Second, func(ctx context.Context) bool {
		for node, peer := range map[string]string{"router1": "10.20.20.2/32", "router2": "10.20.20.1/32"} {
			out, err := vtysh(ctx, node, "show ip route bgp")
			if last = node + ": " + out; err != nil || !strings.Contains(out, "B>* "+peer) {
				return false
			}
		}
		return true
	})
	if !learned {
		sum, _ := vtysh(t.Context(), "router1", "show bgp summary")
		t.Fatalf("loopbacks not learned by BGP:\n%s\nrouter1's sessions:\n%s", last, sum)
	}
	for node, peer := range map[string]string{"router1": "192.168.100.2", "router2": "192.168.100.1"} {
		out, err := vtysh(t.Context(), node, "show bgp neighbors "+peer)
		if err != nil || !strings.Contains(out, "BGP state = Established") {
			t.Errorf("%s: session to %s not Established (%v):\n%s", node, peer, err, out)
		}
	}
	out, err := c.Dockers["hostA"].CLI(t.Context(), "exec", ident.NamespaceName("bgp", "router1"), "ping", "-c", "2", "-W", "2", "-I", "10.20.20.1", "10.20.20.2")
	if err != nil {
		t.Errorf("router1 → router2's loopback: %v\n%s", err, out)
	}
	for host, h := range c.Hosts {
		devs, err := h.Exec(t.Context(), "ip", "-o", "link", "show", "type", "vxlan")
		if err != nil || strings.TrimSpace(devs) != "" {
			t.Errorf("%s: kernel VXLAN devices %q (%v), want none", host, devs, err)
		}
	}
}
