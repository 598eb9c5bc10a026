package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// TestFRRLabs deploys containerlab's frr01 lab in both forms users have —
// routers of the frr kind configured by startup-config (the current one)
// and routers of kind linux with their daemons and frr.conf bound in (the
// older one) — split over two hosts with only `host:` added, and asks FRR
// what it sees: OSPF Full on the same-host and the cross-host links, the
// remote loopbacks learned by OSPF, and PCs on both hosts that reach each
// other through the routers. The files beside each lab file reach the
// routers on whichever host runs them; the images the files name are ours,
// built from Debian packages and tagged with those names.
func TestFRRLabs(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"},
		DockerHosts: []string{"hostA", "hostB"}, Images: []string{
			"frr=quay.io/frrouting/frr:10.2.1", "frr=frrouting/frr:v7.5.1",
			"busybox=wbitt/network-multitool:latest", "busybox=praqma/network-multitool:latest"}})
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
