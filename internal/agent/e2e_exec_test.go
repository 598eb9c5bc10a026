package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	agentclient "github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestAgentExec runs commands in a node through a real agent's
// POST /host/exec: output arrives while the command still runs, a client
// that goes ends the command, and what cannot run is said. A failing exec
// line of a node the agent makes comes back as one line.
func TestAgentExec(t *testing.T) {
	a := newAgentHost(t)
	lab := a.lab
	var node wire.NodeResponse
	req := wire.CreateNodeRequest{Name: "r1", Interfaces: []wire.NodeInterface{{Name: "eth1"}},
		Exec: []string{"ip addr add 10.0.0.1/24 dev eth1", "ip addr add 10.0.0.1/33 dev eth1"}}
	if code := a.call(t, "POST", "/labs/"+lab+"/nodes", token, req, &node); code != 200 {
		t.Fatalf("create r1: status %d", code)
	}
	want := `r1: "ip addr add 10.0.0.1/33 dev eth1": exit 1: Error: any valid prefix is expected rather than "10.0.0.1/33".`
	if len(node.ExecErrors) != 1 || node.ExecErrors[0] != want {
		t.Errorf("exec errors %q, want [%q]", node.ExecErrors, want)
	}
	c := agentclient.New("http://"+apiAddr, token, a.http)

	t.Run("output streams while the command runs; a client that goes ends it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		body, err := c.Exec(ctx, wire.ExecRequest{LabID: lab, Node: "r1", Argv: []string{"sh", "-c", "echo first; sleep 60; echo never"}})
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		first := make(chan string, 1)
		go func() {
			_, _ = wire.ReadExecFrames(body, func(f wire.ExecFrame) error {
				select {
				case first <- f.Stream + ":" + string(f.Data):
				default:
				}
				return nil
			})
		}()
		select {
		case got := <-first:
			if got != "stdout:first\n" {
				t.Errorf("first frame %q", got)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no output while the command runs")
		}
		cancel()
		ns := ident.NamespaceName(lab, "r1")
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := testbed.ExecIn(t.Context(), a.host.Netns, "ip", "netns", "pids", ns)
			if err == nil && strings.TrimSpace(out) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("processes %q (%v) still run in %s after the client went", out, err, ns)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	tests := []struct {
		name    string
		req     wire.ExecRequest
		tok     string
		code    int
		wantErr error  // of the call
		wantIn  string // in the last frame's error
		stdout  string
	}{
		{name: "exit code and output", req: wire.ExecRequest{LabID: lab, Node: "r1", Argv: []string{"sh", "-c", "echo out; exit 7"}},
			tok: token, code: 7, stdout: "out\n"},
		{name: "a node this host does not run", req: wire.ExecRequest{LabID: lab, Node: "r9", Argv: []string{"true"}},
			tok: token, code: -1, wantIn: "no such node"},
		{name: "no command", req: wire.ExecRequest{LabID: lab, Node: "r1"}, tok: token, code: -1, wantErr: agentclient.ErrBadRequest},
		{name: "wrong token", req: wire.ExecRequest{LabID: lab, Node: "r1", Argv: []string{"true"}}, tok: "nope", code: -1,
			wantErr: agentclient.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := agentclient.New("http://"+apiAddr, tt.tok, a.http).Exec(t.Context(), tt.req)
			if tt.wantErr != nil || err != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%v, want %v", err, tt.wantErr)
				}
				return
			}
			defer body.Close()
			var stdout strings.Builder
			code, err := wire.ReadExecFrames(body, func(f wire.ExecFrame) error {
				if f.Stream == wire.StreamStdout {
					stdout.Write(f.Data)
				}
				return nil
			})
			if code != tt.code || stdout.String() != tt.stdout || (err == nil) != (tt.wantIn == "") || err != nil && !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("exit %d, stdout %q, %v; want exit %d, stdout %q, error with %q", code, stdout.String(), err, tt.code, tt.stdout, tt.wantIn)
			}
		})
	}
}
