package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// TestBridge applies a lab in the spirit of containerlab's br01: a bridge
// br1 on hostA and three members linked to it, two on hostA and one on
// hostB, in one subnet. Every member reaches every other across the bridge,
// on one host and across hosts; link ls shows every link up and no warning
// says the bridge is not applied; no node is made for br1; and destroying
// the lab leaves no port on either host.
func TestBridge(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}})
	lab := c.Bed.ID()
	path := c.Ctl.Dir + "/br01.yaml"
	if err := writeFile(path, fmt.Sprintf(`name: %s
topology:
  nodes:
    br1: {kind: bridge, host: hostA}
    m1: {host: hostA, exec: ["ip addr add 10.8.1.1/24 dev eth1"]}
    m2: {host: hostA, exec: ["ip addr add 10.8.1.2/24 dev eth1"]}
    m3: {host: hostB, exec: ["ip addr add 10.8.1.3/24 dev eth1"]}
  links:
    - endpoints: ["m1:eth1", "br1:eth1"]
    - endpoints: ["m2:eth1", "br1:eth2"]
    - endpoints: ["m3:eth1", "br1:eth3"]
`, lab)); err != nil {
		t.Fatal(err)
	}
	out, err := c.CLI(t, "lab", "apply", "-f", path)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if strings.Contains(out, "not applied") {
		t.Errorf("apply warns about the bridge:\n%s", out)
	}
	members := map[string]string{"m1": "10.8.1.1", "m2": "10.8.1.2", "m3": "10.8.1.3"}
	for from := range members {
		for to, addr := range members {
			if from == to {
				continue
			}
			if !wait(t, 10*time.Second, func(ctx context.Context) bool { return ping(ctx, lab, from, addr) }) {
				t.Errorf("%s does not reach %s (%s) across br1", from, to, addr)
			}
		}
	}
	if exists("/run/netns/" + ident.NamespaceName(lab, "br1")) {
		t.Error("a node namespace was made for the bridge br1")
	}
	var links string
	if !wait(t, 10*time.Second, func(context.Context) bool {
		links, _ = c.CLI(t, "link", "ls", lab)
		up := 0
		for _, line := range strings.Split(links, "\n") {
			if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[0], "br1:") && f[2] == "up" { // LINK DESIRED ACTUAL …
				up++
			}
		}
		return up == 3
	}) {
		t.Errorf("link ls does not show the three links up:\n%s", links)
	}

	var show string
	if !wait(t, 10*time.Second, func(context.Context) bool {
		show, _ = c.CLI(t, "lab", "ls")
		return strings.Contains(show, "running")
	}) {
		t.Errorf("the lab, bridge included, is not running:\n%s", show)
	}

	// Two bridges linked would be one segment: the file is refused.
	bad := c.Ctl.Dir + "/br-br.yaml"
	if err := writeFile(bad, fmt.Sprintf("name: %s-x\ntopology:\n  nodes:\n    br1: {kind: bridge}\n    br2: {kind: ovs-bridge}\n  links:\n    - endpoints: [\"br1:eth1\", \"br2:eth1\"]\n", lab)); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", bad, "--plan"); err == nil || !strings.Contains(out, "a link between bridges br1 and br2") {
		t.Errorf("a link between two bridges: %v\n%s", err, out)
	}

	if out, err := c.CLI(t, "lab", "destroy", lab, "--delete"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	for _, name := range []string{"hostA", "hostB"} {
		ports, err := readBridge(t.Context(), c.Hosts[name])
		if err != nil {
			t.Fatal(err)
		}
		for p, row := range ports {
			if row.owned {
				t.Errorf("%s: port %s (tag %d) left after destroy", name, p, row.tag)
			}
		}
	}
	for n := range members {
		if exists("/run/netns/" + ident.NamespaceName(lab, n)) {
			t.Errorf("node %s's namespace left after destroy", n)
		}
	}
}
