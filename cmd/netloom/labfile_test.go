package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/controller/client"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// TestCLILabFileProblems applies lab files with mistakes against a
// controller on SQLite: every problem is printed on its own line at its
// file:line:col, in file order, and the controller's list reaches the
// client with the positions; keys netloom ignores are warnings (a host
// with an agent double is online, so that the plan is made).
func TestCLILabFileProblems(t *testing.T) {
	st, srv := serveController(t)
	agent := httptest.NewServer(&agenttest.Converged{})
	defer agent.Close()
	if _, err := st.RegisterHost(t.Context(), store.Host{Name: "hostA", Address: agent.URL, DataIP: "10.77.0.1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	_ = os.WriteFile(tok, []byte("api-secret-token-for-tests\n"), 0o600)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := `name: typos
topology:
  nodes:
    r1: {hots: hostA}
    r2:
      imagee: alpine
  links:
    - endpionts: [r1:eth1, r2:eth1]
    - endpoints: [r1:ethernet-1/1, r3:eth1]
`
	conn := []string{"--controller", srv.URL, "--token-file", tok}
	tests := []struct {
		name     string
		file     string
		code     int
		wantErr  string // the whole of stderr
		wantWarn string // a line of stderr
	}{
		{"many problems", write("typos.clab.yml", bad), 1, `netloom: invalid lab: 6 problems
typos.clab.yml:4:10: topology.nodes.r1.hots: unknown key: did you mean host?
typos.clab.yml:6:7: topology.nodes.r2.imagee: unknown key: did you mean image?
typos.clab.yml:8:7: topology.links[0].endpionts: unknown key: did you mean endpoints?
typos.clab.yml:8:7: topology.links[0].endpoints: 0 endpoints: want 2
typos.clab.yml:9:19: topology.links[1].endpoints[0]: "ethernet-1/1": "/" is not allowed in an interface name (Linux names are 1 to 15 characters of A-Z a-z 0-9 _ . -)
typos.clab.yml:9:36: topology.links[1].endpoints[1]: "r3": no such node
`, ""},
		{"one problem", write("one.yml", "name: one\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [r1:eth1, r1:averyverylongname]\n"), 1,
			`netloom: invalid lab: one.yml:5:28: topology.links[0].endpoints[1]: "averyverylongname": 17 characters, at most 15 in an interface name (Linux names are 1 to 15 characters of A-Z a-z 0-9 _ . -)` + "\n", ""},
		{"unknown keys far from any are warnings", write("far.yml", "name: far\nfrobnicate: 1\ntopology:\n  nodes: {r1: {colour: red}, r2: {}}\n  links:\n    - endpoints: [r1:eth1, r2:eth1]\n"), 0, "",
			"warning: unknown key colour (nodes r1): not applied\nwarning: unknown key frobnicate: ignored\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, nil, append([]string{"lab", "apply", "--plan", "-f", tt.file}, conn...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if tt.wantWarn != "" {
				if !strings.Contains(errOut, tt.wantWarn) {
					t.Errorf("stderr lacks %q:\n%s", tt.wantWarn, errOut)
				}
				return
			}
			if diff := cmp.Diff(tt.wantErr, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}

	_, err := client.New(srv.URL, "api-secret-token-for-tests", nil, 0).Apply(t.Context(), "typos.clab.yml", []byte(bad), nil, true)
	got := client.Problems(err)
	if len(got) != 6 {
		t.Fatalf("problems %+v of %v", got, err)
	}
	want := wire.Problem{Line: 4, Column: 10, Field: "topology.nodes.r1.hots", Reason: "unknown key: did you mean host?"}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("first problem (-want +got):\n%s", diff)
	}
}
