package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/controller"
	"github.com/netloom/netloom/internal/store"
)

// serveController serves a controller on a fresh SQLite store, with API
// token "api-secret-token-for-tests", until the test ends.
func serveController(t *testing.T) (*store.Store, *httptest.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := controller.New(controller.Config{Listen: ":0", AgentToken: "a", APIToken: "api-secret-token-for-tests", AgentTimeout: time.Second, DeclareTimeout: time.Minute, MaxRequests: 64,
		OfflineAfter: time.Minute, ReconcileInterval: time.Hour, ConvergeEvery: 1, MaxLabNodes: 5000, MaxLabLinks: 20000, Lease: 10 * time.Second}, st, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return st, srv
}

// TestCLI runs the lab commands in-process against a controller served by
// httptest, without agents: what needs no host.
func TestCLI(t *testing.T) {
	_, srv := serveController(t)
	dir := t.TempDir()
	tok, bad := filepath.Join(dir, "tok"), filepath.Join(dir, "bad")
	_ = os.WriteFile(tok, []byte("api-secret-token-for-tests\n"), 0o600)
	_ = os.WriteFile(bad, []byte("nope-not-the-api-token\n"), 0o600)
	lab := filepath.Join(dir, "lab.yaml")
	_ = os.WriteFile(lab, []byte("name: cli\ntopology:\n  nodes: {r1: {}, r2: {image: alpine, startup-config: r2.cfg}}\n  links:\n    - endpoints: [r1:eth1, r2:eth1]\n"), 0o644)
	badLab := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(badLab, []byte("name: cli\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [r1:eth1, r9:eth1]\n"), 0o644)

	conn := []string{"--controller", srv.URL, "--token-file", tok}
	// exec's flags go before its command's --
	ex := func(args ...string) []string { return append(append([]string{"exec"}, conn...), args...) }
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{"plan with no host to place on", append([]string{"lab", "apply", "-f", lab, "--plan"}, conn...), 1, "", "no host is online"},
		{"plan changes nothing", append([]string{"lab", "ls"}, conn...), 0, "NAME  STATE  ERROR\n", ""},
		{"apply with no host online", append([]string{"lab", "apply", "-f", lab}, conn...), 1, "", "no host is online"},
		{"lab is stored", append([]string{"lab", "ls"}, conn...), 0, "cli   stopped", ""},
		{"show", append([]string{"lab", "show", "cli"}, conn...), 0, "r1:eth1-r2:eth1", ""},
		{"show json", append([]string{"lab", "show", "cli", "-o", "json"}, conn...), 0, `"link_name": "r1:eth1-r2:eth1"`, ""},
		{"unknown lab", append([]string{"lab", "show", "nope"}, conn...), 1, "", "not found"},
		{"bad lab file", append([]string{"lab", "apply", "-f", badLab}, conn...), 1, "", `bad.yaml:5:28: topology.links[0].endpoints[1]: "r9": no such node`},
		{"no hosts", append([]string{"host", "ls"}, conn...), 0, "NAME  STATUS  DATA IP  ADDRESS  VERSION  UNDERLAY MTU  UNDERLAY\n", ""},
		{"converge plan", append([]string{"converge", "--plan"}, conn...), 0, "HOST  LAB  LINK", ""},
		{"controllers", append([]string{"controller", "ls"}, conn...), 0, "leader", ""},
		{"wrong token", []string{"lab", "ls", "--controller", srv.URL, "--token-file", bad}, 1, "", "missing or wrong bearer token"},
		{"missing file argument", append([]string{"lab", "apply"}, conn...), 2, "", "-f: a lab file is required"},
		{"show needs a name", append([]string{"lab", "show"}, conn...), 2, "", "accepts between 1 and 2 arg"},
		{"show a node", append([]string{"lab", "show", "cli", "r2"}, conn...), 0, "node r2: kind linux", ""},
		{"show a node that is not", append([]string{"lab", "show", "cli", "r9"}, conn...), 1, "", "lab cli has no node r9"},
		{"exec needs --", ex("cli", "r1", "true"), 2, "", "the command goes after --"},
		{"exec needs a node", ex("cli", "--", "true"), 2, "", "want LAB and NODE before --"},
		{"exec --all takes no node", ex("cli", "r1", "--all", "--", "true"), 2, "", "or LAB with --all"},
		{"exec in a node that is not", ex("cli", "r9", "--", "true"), 1, "", "lab cli: node r9: not found"},
		{"exec in a node not placed", ex("cli", "r1", "--", "true"), 1, "", "lab cli (stopped): node r1: not placed on a host"},
		{"exec in a lab that is not", ex("nope", "r1", "--", "true"), 1, "", "not found"},
		{"exec --all in a lab with no node placed", ex("cli", "--all", "--", "true"), 1, "",
			"exec failed in 2 of 2 nodes: r1 (lab cli (stopped): node r1: not placed on a host), r2 ("},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q", code, out, errOut, tt.code, tt.wantOut, tt.wantErr)
			}
		})
	}
}

// TestCLIApply applies a lab against a controller with agent doubles: --plan
// shows where each node and link goes, --no-wait returns with the lab
// starting or further, apply waits for the deploy and shows its progress,
// and a pin to another host shows as a move.
func TestCLIApply(t *testing.T) {
	st, srv := serveController(t)
	for i, name := range []string{"hostA", "hostB"} {
		agent := httptest.NewServer(&agenttest.Converged{})
		defer agent.Close()
		if _, err := st.RegisterHost(t.Context(), store.Host{Name: name, Address: agent.URL, DataIP: "10.77.0." + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	_ = os.WriteFile(tok, []byte("api-secret-token-for-tests\n"), 0o600)
	lab, moved := filepath.Join(dir, "lab.yaml"), filepath.Join(dir, "moved.yaml")
	_ = os.WriteFile(lab, []byte("name: cli\ntopology:\n  nodes: {r1: {host: hostA}, r2: {host: hostA}, r3: {host: hostB}}\n  links:\n"+
		"    - endpoints: [r1:eth1, r2:eth1]\n    - endpoints: [r2:eth2, r3:eth1]\n"), 0o644)
	_ = os.WriteFile(moved, []byte("name: cli\ntopology:\n  nodes: {r1: {host: hostA}, r2: {host: hostA}, r3: {host: hostA}}\n  links:\n"+
		"    - endpoints: [r1:eth1, r2:eth1]\n    - endpoints: [r2:eth2, r3:eth1]\n"), 0o644)
	conn := []string{"--controller", srv.URL, "--token-file", tok}
	tests := []struct {
		name    string
		args    []string
		wantOut []string
		wantErr string
	}{
		{"plan", []string{"lab", "apply", "-f", lab, "--plan"}, []string{"lab cli (new): 5 changes\n", "    node r3 on hostB\n",
			"    link r1:eth1-r2:eth1: same-host on hostA\n", "    link r2:eth2-r3:eth1: tunnel between hostA and hostB\n"}, ""},
		{"apply waits", []string{"lab", "apply", "-f", lab}, []string{"lab cli is running\n", "r2:eth2-r3:eth1  up"}, "lab cli: running, nodes 3/3, links 2/2 up\n"},
		{"show says when it was verified", []string{"lab", "show", "cli"}, []string{"nodes 3/3, links 2/2 up", " ago "}, ""},
		{"graph: hosts as clusters, the tunnel dashed", []string{"graph", "cli"}, []string{`label="host hostA";`, `label="host hostB";`, "style=dashed"}, ""},
		{"a move in the plan", []string{"lab", "apply", "-f", moved, "--plan"}, []string{"  -/+ node r3: made again (moves hostB → hostA)\n", "    link r2:eth2-r3:eth1: same-host on hostA\n"}, ""},
		{"no wait", []string{"lab", "apply", "-f", moved, "--no-wait", "-o", "json"}, []string{`"lab": "cli"`}, ""},
		{"json waits and prints the result", []string{"lab", "apply", "-f", moved, "-o", "json"}, []string{`"state": "running"`, `"deploy": {`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, nil, append(tt.args, conn...)...)
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if code != 0 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 0 with %q", code, errOut, tt.wantErr)
			}
		})
	}
}

// TestTimeout runs a command against a controller that never answers: it
// must give up after --timeout (or NETLOOM_TIMEOUT) and say so, not hang.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	tok := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tok, []byte("api-secret-token-for-tests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--controller", srv.URL, "--token-file", tok}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"flag", nil, append([]string{"lab", "ls", "--timeout", "200ms"}, conn...), 1,
			"netloom: the controller at " + srv.URL + " did not answer within 200ms\n"},
		{"env twin", map[string]string{"NETLOOM_TIMEOUT": "300ms"}, append([]string{"host", "ls"}, conn...), 1,
			"netloom: the controller at " + srv.URL + " did not answer within 300ms\n"},
		{"flag beats env", map[string]string{"NETLOOM_TIMEOUT": "1h"}, append([]string{"converge", "--plan", "--timeout", "200ms"}, conn...), 1,
			"netloom: the controller at " + srv.URL + " did not answer within 200ms\n"},
		{"not a duration", nil, append([]string{"lab", "ls", "--timeout", "soon"}, conn...), 2, `invalid argument "soon" for "--timeout"`},
		{"negative", nil, append([]string{"lab", "ls", "--timeout", "-1s"}, conn...), 2, "--timeout: -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, errOut, code := run(t, tt.env, tt.args...)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("gave up after %v", took)
			}
			if code != tt.code || out != "" || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stderr with %q", code, out, errOut, tt.code, tt.wantErr)
			}
		})
	}
}

// TestSeveralControllers: with several controller URLs the CLI uses the
// first that answers.
func TestSeveralControllers(t *testing.T) {
	_, srv := serveController(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody answers on once closed
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	tok := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tok, []byte("api-secret-token-for-tests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, nil, "lab", "ls", "--controller", dead+","+srv.URL, "--token-file", tok)
	if code != 0 || !strings.Contains(out, "NAME") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = run(t, nil, "lab", "ls", "--controller", dead+","+dead, "--token-file", tok)
	if code != 1 || !strings.Contains(errOut, "controller unreachable at "+dead+", "+dead) {
		t.Errorf("none answers: exit %d, stderr %q", code, errOut)
	}
}
