package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
)

func hostileServer(t *testing.T) (*httptest.Server, *fabrictest.Fake) {
	t.Helper()
	f := fabrictest.New()
	cfg := testConfig(t)
	cfg.Token = "tok"
	a, err := New(cfg, f, runtimetest.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv, f
}

// endpoints lists every route of the agent API with a body it accepts.
var endpoints = []struct{ method, path, body string }{
	{"POST", "/overlay/declare-state", `{"tunnels":[]}`},
	{"POST", "/host/declare-state", `{"nodes":[]}`},
	{"GET", "/labs/lab1/port-state", ""},
	{"POST", "/ports/declare-state", `{"pairings":[]}`},
	{"POST", "/overlay/reconcile-ports", `{"valid_port_names":[]}`},
	{"POST", "/overlay/attach-link", `{}`},
	{"POST", "/overlay/detach-link", `{}`},
	{"POST", "/labs/lab1/links", `{}`},
	{"DELETE", "/labs/lab1/links/a:eth1-b:eth1", ""},
	{"POST", "/labs/lab1/nodes", `{}`},
	{"DELETE", "/labs/lab1/nodes/r1", ""},
	{"POST", "/overlay/cleanup", `{"lab_id":"lab1"}`},
	{"PUT", "/overlay/ports/p1/vlan", `{"vlan_tag":5}`},
	{"GET", "/overlay/status", ""},
	{"GET", "/metrics", ""},
}

func send(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

// TestEveryEndpointNeedsTheToken sends each endpoint no token, a wrong one
// and a prefix of the right one: always 401, and the bridge untouched.
func TestEveryEndpointNeedsTheToken(t *testing.T) {
	t.Parallel()
	srv, f := hostileServer(t)
	for _, e := range endpoints {
		for _, tok := range []string{"", "wrong", "to", "tok2"} {
			if code, _ := send(t, srv, e.method, e.path, tok, e.body); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401", e.method, e.path, tok, code)
			}
		}
	}
	if code, _ := send(t, srv, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("healthz without a token: %d", code)
	}
	if n := len(f.Applies()); n != 0 {
		t.Errorf("unauthorised requests applied %d plans", n)
	}
}

// TestHostileInput sends what an attacker or a broken client would.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	srv, f := hostileServer(t)
	big := `{"tunnels":[` + strings.Repeat(`{"link_id":"a:eth1-b:eth1","lab_id":"lab1","port_name":"p","vni":1},`, 200000) + `{}]}`
	tests := []struct {
		name, method, path, body string
		want                     int
		wantIn                   string
	}{
		{"oversized body", "POST", "/overlay/declare-state", big, http.StatusRequestEntityTooLarge, ""},
		{"not JSON", "POST", "/overlay/declare-state", "tunnels=all", http.StatusBadRequest, "malformed"},
		{"lab with path traversal", "GET", "/labs/..%2F..%2Fetc/port-state", "", http.StatusBadRequest, "lab_id"},
		{"node with shell characters", "POST", "/labs/lab1/nodes", `{"name":"r1;rm -rf /","interfaces":[{"name":"eth1"}]}`, http.StatusBadRequest, `"field":"name"`},
		{"interface with a slash", "POST", "/labs/lab1/nodes", `{"name":"r1","interfaces":[{"name":"../eth1"}]}`, http.StatusBadRequest, "interfaces[0].name"},
		{"port name with shell characters", "PUT", "/overlay/ports/p%3Bls/vlan", `{"vlan_tag":5}`, http.StatusBadRequest, "port_name"},
		{"tunnel port name too long", "POST", "/overlay/declare-state", `{"tunnels":[{"link_id":"a:e1-b:e1","lab_id":"l","vni":5,"local_ip":"10.0.0.1","remote_ip":"10.0.0.2","expected_vlan":5,"port_name":"vxlan-0123456789abcdef"}]}`, http.StatusBadRequest, "port_name"},
		{"unknown port", "PUT", "/overlay/ports/nosuch/vlan", `{"vlan_tag":5}`, http.StatusNotFound, ""},
		{"unknown same-host link", "DELETE", "/labs/lab1/links/r1:eth1-r2:eth1", "", http.StatusNotFound, ""},
		{"attach to an unknown node", "POST", "/overlay/attach-link", `{"lab_id":"lab1","container_name":"r1","interface_name":"eth1","vni":5,"local_ip":"10.0.0.1","remote_ip":"10.0.0.2","link_id":"r1:eth1-r2:eth1"}`, http.StatusNotFound, ""},
		{"host declaration: node with a shell character", "POST", "/host/declare-state", `{"nodes":[{"lab_id":"lab1","name":"r1;ls","interfaces":[{"name":"eth1","vlan_tag":5}]}]}`, http.StatusBadRequest, "nodes[0].name"},
		{"host declaration: untagged interface", "POST", "/host/declare-state", `{"nodes":[{"lab_id":"lab1","name":"r1","interfaces":[{"name":"eth1"}]}]}`, http.StatusBadRequest, "nodes[0].interfaces[0].vlan_tag"},
		{"host declaration: duplicate node", "POST", "/host/declare-state", `{"nodes":[{"lab_id":"l","name":"r1","interfaces":[]},{"lab_id":"l","name":"r1","interfaces":[]}]}`, http.StatusBadRequest, "nodes[1].name"},
		{"unknown lab has no ports", "GET", "/labs/nolab/port-state", "", http.StatusOK, `"ports":[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := send(t, srv, tt.method, tt.path, "tok", tt.body)
			if code != tt.want || !strings.Contains(body, tt.wantIn) {
				t.Errorf("%d %s; want %d containing %q", code, body[:min(len(body), 300)], tt.want, tt.wantIn)
			}
		})
	}
	if n := len(f.Applies()); n != 0 {
		t.Errorf("hostile requests applied %d plans", n)
	}
}

// TestInterruptedDumpIsNotAServerError reads port state from a host whose
// links kept changing through every retry of a dump: 503, try again, not
// a 500.
func TestInterruptedDumpIsNotAServerError(t *testing.T) {
	t.Parallel()
	rt := runtimetest.New()
	rt.ListErr = fmt.Errorf("host: list links: 20 tries: %w", netlink.ErrDumpInterrupted)
	a, err := New(testConfig(t), fabrictest.New(), rt, quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	if code, body := send(t, srv, "GET", "/labs/lab1/port-state", "tok", ""); code != http.StatusServiceUnavailable {
		t.Errorf("port-state: %d %s, want 503", code, body)
	}
}
