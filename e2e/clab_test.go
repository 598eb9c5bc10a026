package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// TestContainerlabLabs deploys containerlab's own example labs, split over
// two hosts with only `host:` added, on one cluster: frr01 in both forms
// users have — routers of the frr kind configured by startup-config (the
// current one) and routers of kind linux with their daemons and frr.conf
// bound in (the older one) — and br01, three members of a bridge. The
// files beside each lab file reach the nodes on whichever host runs them;
// the images the files name are ours, built from Debian packages and
// tagged with those names.
func TestContainerlabLabs(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"},
		DockerHosts: []string{"hostA", "hostB"}, Images: []string{
			"frr=quay.io/frrouting/frr:10.2.1", "frr=frrouting/frr:v7.5.1",
			"busybox=wbitt/network-multitool:latest", "busybox=praqma/network-multitool:latest", "busybox=ghcr.io/nokia/srlinux:latest"}})
	t.Run("br01", func(t *testing.T) {
		t.Parallel()
		testBr01(t, c)
	})
	testFRR(t, c)
}

// testFRR asks FRR what it sees of frr01 in both forms: OSPF Full on the
// same-host and the cross-host links, the remote loopbacks learned by
// OSPF, and PCs on both hosts that reach each other through the routers;
// and every node answers on its management address from its host (the two
// labs on one cluster: the second gets the next management subnet).
func testFRR(t *testing.T, c *testbed.Cluster) {
	docker := func(ctx context.Context, host string, args ...string) (string, error) {
		return c.Dockers[host].CLI(ctx, args...)
	}
	for _, form := range []struct{ lab, file string }{{"frr01", "frr01/frr01.clab.yml"}, {"frrlab", "frrlab/frrlab.yml"}} {
		t.Run(form.lab, func(t *testing.T) {
			t.Parallel()
			file, err := filepath.Abs(filepath.Join("testdata", form.file))
			if err != nil {
				t.Fatal(err)
			}
			if out, err := c.CLI(t, "lab", "apply", "-f", file); err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			hostOf := map[string]string{"router1": "hostA", "PC1": "hostA", "router2": "hostB", "router3": "hostB", "PC2": "hostB", "PC3": "hostB"}
			in := func(ctx context.Context, node string, args ...string) (string, error) {
				return docker(ctx, hostOf[node], append([]string{"exec", ident.NamespaceName(form.lab, node)}, args...)...)
			}
			// router1's neighbours are both across the tunnel; router2
			// and router3 meet on hostB.
			var last string
			full := wait(t, 90*time.Second, func(ctx context.Context) bool {
				for _, r := range []string{"router1", "router2", "router3"} {
					out, err := in(ctx, r, "vtysh", "-c", "show ip ospf neighbor")
					if last = r + ": " + out; err != nil || strings.Count(out, "Full/") != 2 {
						return false
					}
				}
				return true
			})
			if !full {
				t.Fatalf("OSPF adjacencies not all Full:\n%s", last)
			}
			routes := wait(t, 30*time.Second, func(ctx context.Context) bool {
				for _, r := range []string{"router1", "router2", "router3"} {
					out, err := in(ctx, r, "vtysh", "-c", "show ip route ospf")
					last = r + ": " + out
					for n := 1; n <= 3; n++ {
						if fmt.Sprintf("router%d", n) != r && (err != nil || !strings.Contains(out, fmt.Sprintf("O>* 10.10.10.%d/32", n))) {
							return false
						}
					}
				}
				return true
			})
			if !routes {
				t.Errorf("remote loopbacks not learned by OSPF:\n%s", last)
			}
			for _, p := range []struct{ from, to string }{{"PC1", "192.168.13.2"}, {"PC1", "192.168.12.2"}, {"PC3", "192.168.11.2"}, {"PC1", "10.10.10.3"}} {
				out, err := in(t.Context(), p.from, "ping", "-c", "2", "-W", "2", p.to)
				if err != nil {
					t.Errorf("%s → %s: %v\n%s", p.from, p.to, err, out)
				}
			}
			mgmtReachable(t, c, form.lab)
			if out, err := c.CLI(t, "lab", "destroy", form.lab, "--delete"); err != nil {
				t.Fatalf("destroy: %v\n%s", err, out)
			}
			for host, h := range c.Hosts {
				if left, err := docker(t.Context(), host, "ps", "-aq", "--filter", "label="+ident.LabKey+"="+form.lab); err != nil || left != "" {
					t.Errorf("%s keeps containers of %s: %q (%v)", host, form.lab, left, err)
				}
				// Ports and tunnels of the lab carry its name in their marks.
				left, err := h.VSCtl(t.Context(), "--columns=name", "find", "Port", "external_ids:"+ident.LabKey+"="+form.lab)
				if err != nil || strings.TrimSpace(left) != "" {
					t.Errorf("%s keeps ports of %s: %q (%v)", host, form.lab, left, err)
				}
			}
		})
	}
}

// mgmtReachable checks that every node of a lab answers on its management
// address from its host.
func mgmtReachable(t *testing.T, c *testbed.Cluster, lab string) {
	t.Helper()
	out, err := c.CLI(t, "lab", "show", lab, "-o", "json")
	var v wire.LabView
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.MgmtSubnet == "" {
		t.Fatalf("lab show %s: %v\n%s", lab, err, out)
	}
	for _, n := range v.Nodes {
		if !topology.HasMgmt(n.Kind, n.NetworkMode) {
			continue
		}
		a, err := netip.ParseAddr(n.MgmtAddress)
		if err != nil {
			t.Errorf("node %s has no management address (%q)", n.Name, n.MgmtAddress)
			continue
		}
		if !wait(t, 10*time.Second, func(ctx context.Context) bool {
			got, err := c.Hosts[n.PlacedOn].Ping(ctx, a, 1)
			return err == nil && got == 1
		}) {
			t.Errorf("%s does not reach %s on its management address %s (subnet %s)", n.PlacedOn, n.Name, a, v.MgmtSubnet)
		}
	}
}

// testBr01 deploys containerlab's br01: the bridge with two members on
// hostA, the third on hostB. Its members have no address but their IPv6
// link-local ones, which is all a bridge needs to show it passes frames:
// every member reaches every other across it, and the lab runs with no
// warning about the bridge.
func testBr01(t *testing.T, c *testbed.Cluster) {
	file, err := filepath.Abs("testdata/br01/br01.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.CLI(t, "lab", "apply", "-f", file)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if strings.Contains(out, "bridge") {
		t.Errorf("apply warns about the bridge:\n%s", out)
	}
	members := []string{"srl1", "srl2", "srl3"}
	hostOf := map[string]string{"srl1": "hostA", "srl2": "hostA", "srl3": "hostB"}
	for _, from := range members {
		for _, to := range members {
			if from == to {
				continue
			}
			dst := linkLocal(ident.NodeMAC("br01", to, "e1-1"), "e1-1")
			// The containers' namespaces are Docker's: ping runs in them.
			var out string
			if !wait(t, 20*time.Second, func(ctx context.Context) bool {
				var err error
				out, err = c.Dockers[hostOf[from]].CLI(ctx, "exec", ident.NamespaceName("br01", from), "ping", "-c", "1", "-W", "1", dst)
				return err == nil
			}) {
				t.Errorf("%s does not reach %s (%s) across br-clab: %s", from, to, dst, out)

			}
		}
	}
	mgmtReachable(t, c, "br01")
	if out, err := c.CLI(t, "lab", "destroy", "br01", "--delete"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
}

// linkLocal is the IPv6 link-local address the kernel gives an interface
// of MAC address mac (EUI-64), scoped to the interface.
func linkLocal(mac net.HardwareAddr, iface string) string {
	b := [16]byte{0: 0xfe, 1: 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]}
	return netip.AddrFrom16(b).WithZone(iface).String()
}

// wait polls ok every half second until it holds or d has passed.
func wait(t *testing.T, d time.Duration, ok func(context.Context) bool) bool {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		done := ok(ctx)
		cancel()
		if done {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}
