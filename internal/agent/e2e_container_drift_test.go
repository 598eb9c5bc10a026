package agent_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestContainerDrift stops, kills and restarts a container node by hand, on
// a host with no controller, and times the agent bringing it back, running
// and passing traffic: the repair must come from Docker's events (its cause
// says so), not from the host end's disappearance, which after a stop can
// take many seconds (here, the test holds the old namespace open).
//
// The cause is any of Docker's: each repair of a container is followed by
// one for the echoes of its own work (the container's start, its new host
// end), which finds nothing to do unless a command of the test's came
// first. It then repairs that, named after the start that called for it
// when the command's events came while it observed the host.
//
// Last, the container restarts while the agent is down: the agent starts
// to a container that runs, with its host end still there (its peer in the
// old namespace) and none in its new namespace.
func TestContainerDrift(t *testing.T) {
	dk, a := newDockerAgentHost(t)
	lab := a.lab
	r := a.declareHost(t, wire.HostDeclaration{Generation: gen(1), Nodes: []wire.DeclaredNode{
		{LabID: lab, Name: "c1", Image: "netloom/busybox:latest", Exec: []string{"ip addr add 192.168.84.1/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2200}}},
		{LabID: lab, Name: "n1", Exec: []string{"ip addr add 192.168.84.2/24 dev eth1"},
			Interfaces: []wire.DeclaredInterface{{Name: "eth1", VLANTag: 2200}}},
	}})
	if got, want := statusSet(r), "c1 created, c1:eth1 created, n1 created, n1:eth1 created"; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if got := a.ping(t, "n1", "192.168.84.1"); got != 2 {
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
	fromDocker := []string{"container died", "container restarted"}
	for _, tt := range []struct {
		name   string
		args   []string
		causes []string // one of them must count the repair
		// down restarts the agent around the command: the agent starts
		// to a container running in a namespace it never wired.
		down bool
	}{
		// A stop lets the namespace, and the host end in it, linger.
		{"stop", []string{"stop", "-t", "0", container}, fromDocker, false},
		{"kill", []string{"kill", container}, fromDocker, false},
		{"restart", []string{"restart", "-t", "0", container}, fromDocker, false},
		{"restart while the agent is down", []string{"restart", "-t", "0", container}, []string{"restore"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Hold the container's namespace, as a slow teardown does (a
			// stop's namespace has been seen to outlive it by 34 s): its
			// host end stays, up, and says nothing.
			held, err := os.Open(docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", container))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			before := a.repairs(t)
			if tt.down {
				if err := a.proc.Kill(); err != nil {
					t.Fatal(err)
				}
				before = map[string]int{}
			}
			docker(tt.args...)
			start := time.Now()
			if tt.down {
				a.start(t)
			}
			// A dead container's namespace may linger and answer pings
			// from the kernel: back means running, its exec run again in
			// its new namespace, and traffic.
			for !strings.Contains(dockerTry(t, dk, "exec", container, "ip", "-4", "addr", "show", "eth1"), "192.168.84.1/24") {
				if time.Since(start) > 20*time.Second {
					t.Fatalf("container %s not running with its address 20s after docker %s", container, tt.name)
				}
				time.Sleep(50 * time.Millisecond)
			}
			waitPing(t, lab, "n1", "192.168.84.1", 20*time.Second)
			took := time.Since(start)
			after := a.repairs(t)
			t.Logf("docker %s: traffic back after %v, no controller; repairs %v", tt.name, took, diff(before, after))
			if !slices.ContainsFunc(tt.causes, func(c string) bool { return after[c] > before[c] }) {
				t.Errorf("no repair with a cause of %q: repairs before %v, after %v", tt.causes, before, after)
			}
		})
	}
}

// dockerTry runs a docker command and returns its output, or "" if it
// failed.
func dockerTry(t *testing.T, dk *testbed.Docker, args ...string) string {
	out, err := dk.CLI(t.Context(), args...)
	if err != nil {
		return ""
	}
	return out
}

var repairLine = regexp.MustCompile(`(?m)^netloom_agent_repairs_total\{cause="([^"]*)"\} (\d+)$`)

// repairs reads the agent's repair counts by cause.
func (a *agentHost) repairs(t *testing.T) map[string]int {
	t.Helper()
	body := a.metrics(t)
	out := map[string]int{}
	for _, m := range repairLine.FindAllStringSubmatch(body, -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

// diff returns the counts that grew, by how much.
func diff(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if v > before[k] {
			out[k] = v - before[k]
		}
	}
	return out
}
