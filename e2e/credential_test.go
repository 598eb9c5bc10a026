package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestHostCredentials: each agent is bound to its host's name by the
// credential the controller gave it at its first registration. An agent
// started on hostB with hostA's name is refused — with hostB's credential,
// and with none — and hostA stays where it is; `host rm` lets the name go,
// and is refused while labs have nodes there.
func TestHostCredentials(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}})
	for _, h := range []string{"hostA", "hostB"} {
		data, err := os.ReadFile(filepath.Join(c.Hosts[h].Dir, "agent", "credential"))
		if err != nil || len(strings.TrimSpace(string(data))) != 64 {
			t.Fatalf("%s's agent holds no credential: %q, %v", h, data, err)
		}
	}
	lab := c.Bed.ID()
	path := c.Ctl.Dir + "/lab.yaml"
	if err := writeFile(path, "name: "+lab+"\ntopology:\n  nodes: {a1: {host: hostA}}\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}

	hostB := c.Hosts["hostB"]
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(c.AgentToken), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, credential string }{{"with hostB's credential", "hostB"}, {"with none", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			if tt.credential != "" {
				data, err := os.ReadFile(filepath.Join(c.Hosts[tt.credential].Dir, "agent", "credential"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(state, "credential"), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ip := hostB.Underlay.Addr().String()
			p, err := hostB.Start(t.Context(), netloomBin, "agent", "--listen", ip+":7402", "--advertise", "http://"+ip+":7402", "--name", "hostA",
				"--data-ip", ip, "--controller", testbed.ControllerURL, "--state-dir", state, "--ovsdb", hostB.OVSDB(), "--bridge", "rogue0",
				"--token-file", token, "--runtimes", "netns")
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			if !wait(t, 15*time.Second, func(context.Context) bool {
				return strings.Contains(p.Output(), "status 403: forbidden: host hostA is bound to the agent that registered it first")
			}) {
				t.Errorf("the agent naming itself hostA was not refused:\n%s", p.Output())
			}
			var h wire.HostView
			if code := c.Call(t, "GET", "/api/v1/hosts/hostA", "", nil, &h); code != 200 || h.DataIP != c.Hosts["hostA"].Underlay.Addr().String() {
				t.Errorf("hostA after the attempt: %d %+v", code, h)
			}
		})
	}

	// hostA runs a1: its name is not given up but by force.
	if out, err := c.CLI(t, "host", "rm", "hostA"); err == nil || !strings.Contains(out, "lab "+lab+" has nodes on hostA") {
		t.Errorf("host rm of a host with nodes: %v\n%s", err, out)
	}
	// A running agent would register again at once: it goes first.
	if err := c.Agents["hostB"].Kill(); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "host", "rm", "hostB"); err != nil {
		t.Errorf("host rm hostB: %v\n%s", err, out)
	}
	if code := c.Call(t, "GET", "/api/v1/hosts/hostB", "", nil, nil); code != 404 {
		t.Errorf("hostB after host rm: %d", code)
	}
}
