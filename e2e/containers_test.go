package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
)

// TestContainerNodes applies a lab of container nodes (BusyBox) and a netns
// node over three hosts, two of which run Docker: the unpinned container
// goes to a Docker host, traffic passes container to container and
// container to namespace across hosts, a container pinned to the host
// without Docker is a plan-time error naming both, and destroy leaves no
// container.
func TestContainerNodes(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB", "hostC"},
		DockerHosts: []string{"hostA", "hostB"}})
	lab := c.Bed.ID()
	const file = `name: %s
topology:
  nodes:
    c1: {image: netloom/busybox:latest, exec: ["ip addr add 10.6.1.1/24 dev eth1"]}
    c2: {image: netloom/busybox:latest, host: hostB, exec: ["ip addr add 10.6.1.2/24 dev eth1", "ip addr add 10.6.2.1/24 dev eth2"]}
    n1: {host: hostC, exec: ["ip addr add 10.6.2.2/24 dev eth1"]}
%s  links:
    - endpoints: ["c1:eth1", "c2:eth1"]
    - endpoints: ["c2:eth2", "n1:eth1"]
`
	path := c.Ctl.Dir + "/containers.yaml"
	write := func(extra string) {
		t.Helper()
		if err := writeFile(path, fmt.Sprintf(file, lab, extra)); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	if out, err := c.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	var hostOf = map[string]string{}
	var v store.LabView
	c.Call(t, "GET", "/api/v1/labs/"+lab, "", nil, &v)
	for _, n := range v.Nodes {
		hostOf[n.Name] = n.PlacedOn
	}
	if _, ok := c.Dockers[hostOf["c1"]]; !ok {
		t.Fatalf("the unpinned container went to %q, a host without Docker", hostOf["c1"])
	}
	docker := func(host string, args ...string) (string, error) { return c.Dockers[host].CLI(t.Context(), args...) }
	if out, err := docker(hostOf["c1"], "exec", ident.NamespaceName(lab, "c1"), "ping", "-c", "2", "-W", "1", "10.6.1.2"); err != nil {
		t.Errorf("container c1 → container c2: %v\n%s", err, out)
	}
	if got, err := testbed.PingFrom(t.Context(), ident.NamespaceName(lab, "n1"), netip.MustParseAddr("10.6.2.1"), 2); err != nil || got != 2 {
		t.Errorf("namespace n1 on hostC → container c2 on hostB: %d/2 (%v)", got, err)
	}

	write("    c3: {image: netloom/busybox:latest, host: hostC}\n")
	out, err := c.CLI(t, "lab", "apply", "-f", path, "--plan")
	if err == nil || !strings.Contains(out, "node c3 runs image netloom/busybox:latest: host hostC has no container runtime") {
		t.Errorf("a container pinned to a host without Docker: %v\n%s", err, out)
	}

	if out, err := c.CLI(t, "lab", "destroy", lab, "--delete"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	for host := range c.Dockers {
		if left, err := docker(host, "ps", "-aq"); err != nil || left != "" {
			t.Errorf("%s keeps containers %q (%v)", host, left, err)
		}
	}
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o644) }
