package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// hungLab is a lab on hostB alone.
const hungLab = `name: %s
topology:
  nodes:
    b1: {host: hostB}
    b2: {host: hostB}
  links:
    - endpoints: ["b1:eth1", "b2:eth1"]
`

// TestHungHost registers a host whose agent accepts connections and never
// answers, beside a real one, with full rounds every second: a lab on the
// real host deploys, converges and is destroyed in normal time, and host
// ls shows the hung host degraded, saying why.
func TestHungHost(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostB"},
		ControllerArgs: []string{"--agent-timeout", "2s", "--reconcile-interval", "1s", "--converge-every", "1"}})
	hung, err := c.Bed.AddMachine(t.Context(), "hung", netip.MustParsePrefix("10.77.0.50/24"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := hung.Listen("tcp", "10.77.0.50:7401")
	if err != nil {
		t.Fatal(err)
	}
	testbed.Hang(t, ln)
	reg, _ := json.Marshal(wire.RegisterRequest{Name: "hung", Address: "http://10.77.0.50:7401", DataIP: "10.77.0.50", Version: "hung"})
	if code := c.CallAs(t, c.AgentToken, "POST", "/api/v1/hosts/register", "application/json", reg, nil); code != http.StatusOK {
		t.Fatalf("register the hung host: %d", code)
	}

	lab := c.Bed.ID()
	if code := c.Call(t, "POST", "/api/v1/labs", "application/yaml", fmt.Appendf(nil, hungLab, lab), nil); code != http.StatusCreated {
		t.Fatalf("create lab: %d", code)
	}
	const bound = 15 * time.Second // normal is well under a second
	timed := func(what, method, path string, wantCode int, out any) time.Duration {
		t.Helper()
		start := time.Now()
		if code := c.Call(t, method, path, "", nil, out); code != wantCode {
			t.Fatalf("%s: %d, want %d", what, code, wantCode)
		}
		took := time.Since(start)
		t.Logf("%s with a hung host: %v", what, took)
		if took > bound {
			t.Errorf("%s took %v, want under %v", what, took, bound)
		}
		return took
	}
	var d wire.DeployResponse
	timed("deploy", "POST", "/api/v1/labs/"+lab+"/deploy", http.StatusOK, &d)
	if d.State != "running" {
		t.Fatalf("deploy: %+v", d)
	}
	var conv wire.ConvergeResponse
	timed("converge of the lab", "POST", "/api/v1/converge?lab="+lab, http.StatusOK, &conv)
	if len(conv.Agents) != 1 || conv.Agents[0].Host != "hostB" || conv.Agents[0].Error != "" {
		t.Errorf("converge of the lab: %+v", conv)
	}
	timed("destroy", "POST", "/api/v1/labs/"+lab+"/destroy", http.StatusOK, &d)
	if d.State != "stopped" {
		t.Fatalf("destroy: %+v", d)
	}

	deadline := time.Now().Add(bound)
	for {
		out, err := c.CLI(t, "host", "ls")
		if err != nil {
			t.Fatalf("host ls: %v\n%s", err, out)
		}
		line := ""
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, "hung ") {
				line = l
			}
		}
		if strings.Contains(line, "degraded: no answer in ") && strings.Contains(line, " since ") {
			t.Logf("host ls:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host ls does not show the hung host degraded:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
