package agent_test

import (
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestContainerNodes declares a host with a container node (BusyBox, on the
// bed's private Docker daemon) linked to a netns node, proves the link with
// packets, then kills the container by hand and times the agent bringing it
// back, without a controller.
func TestContainerNodes(t *testing.T) {
	dk, a := newDockerAgentHost(t)
	lab := a.lab
	decl := wire.HostDeclaration{Generation: gen(1), Nodes: []wire.DeclaredNode{
		{LabID: lab, Name: "c1", Image: "netloom/busybox:latest", Exec: []string{"ip addr add 192.168.83.1/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2100}}},
		{LabID: lab, Name: "n1", Exec: []string{"ip addr add 192.168.83.2/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2100}}},
	}}
	r := a.declareHost(t, decl)
	if got, want := statusSet(r), "c1 created, c1:eth1 created, n1 created, n1:eth1 created"; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	for _, n := range r.Nodes {
		if len(n.ExecFailures) > 0 {
			t.Fatalf("exec in %s: %v", n.Name, n.ExecFailures)
		}
	}
	if got := a.ping(t, "n1", "192.168.83.1"); got != 2 {
		t.Fatalf("netns node → container node: %d/2", got)
	}
	docker := func(args ...string) string {
		out, err := dk.CLI(t.Context(), args...)
		if err != nil {
			t.Fatalf("docker %v: %v: %s", args, err, out)
		}
		return out
	}
	container := ident.NamespaceName(lab, "c1")
	if labels := docker("inspect", "-f", "{{index .Config.Labels \"netloom-lab\"}} {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}}", container); labels != lab+" none no" {
		t.Errorf("container %s: %q, want its lab's label, no network of Docker's, no restart", container, labels)
	}

	docker("kill", container)
	took := waitPing(t, lab, "n1", "192.168.83.1", 10*time.Second)
	t.Logf("container killed by hand: traffic back after %v, no controller", took)

	// Restarted by hand: a new namespace without eth1 or its address.
	docker("restart", "-t", "0", container)
	took = waitPing(t, lab, "n1", "192.168.83.1", 10*time.Second)
	t.Logf("container restarted by hand: traffic back after %v, no controller", took)

	r = a.declareHost(t, wire.HostDeclaration{DeclaredLabs: []string{lab}, Generation: gen(2)})
	if got, want := statusSet(r), "c1 removed, c1:eth1 removed, n1 removed, n1:eth1 removed"; got != want {
		t.Errorf("declared away: %s, want %s", got, want)
	}
	if left := docker("ps", "-aq"); left != "" {
		t.Errorf("containers left: %s", left)
	}
}

// newDockerAgentHost starts a bed with hostA, its private Docker daemon
// holding the BusyBox image, and an agent that runs containers there.
func newDockerAgentHost(t *testing.T) (*testbed.Docker, *agentHost) {
	t.Helper()
	bed := testbed.Start(t)
	dk, err := bed.StartDocker(t.Context(), "hostA")
	if err != nil {
		t.Fatal(err)
	}
	if err := dk.LoadImages(t.Context(), "busybox"); err != nil {
		t.Fatal(err)
	}
	return dk, newAgentHostOn(t, bed, "hostA", "10.77.0.1", dk.Socket)
}
