package controller

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

func newTestController(t *testing.T, offlineAfter time.Duration) (*Controller, *httptest.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(Config{Listen: ":0", AgentToken: "agent", APIToken: "api", AgentTimeout: time.Second, DeclareTimeout: time.Minute, MaxRequests: 64, OfflineAfter: offlineAfter, ReconcileInterval: time.Hour, ConvergeEvery: 1}, st, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.routes())
	t.Cleanup(srv.Close)
	return c, srv
}

func do(t *testing.T, srv *httptest.Server, method, path, token, ctype, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(out); err != nil {
			t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

func TestAPI(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, 300*time.Millisecond)
	reg := `{"name":"hostA","address":"http://10.77.0.1:7401","data_ip":"10.77.0.1","capabilities":["ovs"],"version":"t"}`
	lab := `{"name":"lab1","nodes":[{"name":"r1","kind":"linux"},{"name":"r2","kind":"linux"}],
		"links":[{"a":{"node":"r1","interface":"eth1"},"b":{"node":"r2","interface":"eth1"}}]}`
	tests := []struct {
		name         string
		method, path string
		token, ctype string
		body         string
		want         int
		wantInBody   string
	}{
		{"no token", "GET", "/api/v1/hosts", "", "", "", 401, "bearer token"},
		{"agent token is not an API token", "GET", "/api/v1/labs", "agent", "", "", 401, ""},
		{"API token cannot register", "POST", "/api/v1/hosts/register", "api", "", reg, 401, ""},
		{"bad registration", "POST", "/api/v1/hosts/register", "agent", "", `{"name":"a b","address":"10.0.0.1","data_ip":"x"}`, 400, `"field":"data_ip"`},
		{"a host name no lab file can give", "POST", "/api/v1/hosts/register", "agent", "", `{"name":"h;id","address":"http://10.0.0.1:7401","data_ip":"10.0.0.1"}`, 400, `"field":"name"`},
		{"a loopback data address", "POST", "/api/v1/hosts/register", "agent", "", `{"name":"h","address":"http://10.0.0.1:7401","data_ip":"127.0.0.1"}`, 400, "loopback"},
		{"register", "POST", "/api/v1/hosts/register", "agent", "", reg, 200, ""},
		{"heartbeat", "POST", "/api/v1/hosts/hostA/heartbeat", "agent", "", "{}", 200, ""},
		{"heartbeat of a stranger", "POST", "/api/v1/hosts/hostZ/heartbeat", "agent", "", "{}", 404, ""},
		{"host online", "GET", "/api/v1/hosts/hostA", "api", "", "", 200, `"status":"online"`},
		{"lab from JSON", "POST", "/api/v1/labs", "api", "application/json", lab, 201, `"name":"lab1"`},
		{"same name again", "POST", "/api/v1/labs", "api", "application/json", lab, 409, "already exists"},
		{"invalid JSON lab", "POST", "/api/v1/labs", "api", "application/json", `{"name":"x","nodes":[]}`, 400, "no nodes"},
		{"malformed body", "POST", "/api/v1/labs", "api", "application/json", `{"name":`, 400, "malformed"},
		{"more after the JSON", "POST", "/api/v1/labs", "api", "application/json", lab + `{"name":"x"}`, 400, "more after the JSON value"},
		{"unknown lab", "GET", "/api/v1/labs/nope", "api", "", "", 404, ""},
		{"links of a lab", "GET", "/api/v1/labs/lab1/links", "api", "", "", 200, `"link_name":"r1:eth1-r2:eth1"`},
		{"list labs", "GET", "/api/v1/labs", "api", "", "", 200, `"state":"stopped"`},
	}
	for _, tt := range tests {
		var body json.RawMessage
		got := do(t, srv, tt.method, tt.path, tt.token, tt.ctype, tt.body, &body)
		if got != tt.want || !strings.Contains(string(body), tt.wantInBody) {
			t.Errorf("%s: %d %s; want %d containing %q", tt.name, got, body, tt.want, tt.wantInBody)
		}
	}

	// A running lab is not deleted; a stopped one is.
	if err := c.store.SetLabState(t.Context(), "lab1", store.LabRunning, ""); err != nil {
		t.Fatal(err)
	}
	if got := do(t, srv, "DELETE", "/api/v1/labs/lab1", "api", "", "", nil); got != 409 {
		t.Errorf("delete of a running lab: %d, want 409", got)
	}
	if err := c.store.SetLabState(t.Context(), "lab1", store.LabStopped, ""); err != nil {
		t.Fatal(err)
	}
	if got := do(t, srv, "DELETE", "/api/v1/labs/lab1", "api", "", "", nil); got != 200 {
		t.Errorf("delete of a stopped lab: %d, want 200", got)
	}

	// Without heartbeats the host goes offline, and nothing can be placed.
	time.Sleep(400 * time.Millisecond)
	var h wire.HostView
	do(t, srv, "GET", "/api/v1/hosts/hostA", "api", "", "", &h)
	if h.Status != "offline" {
		t.Errorf("host after the offline delay: %+v", h)
	}
	do(t, srv, "POST", "/api/v1/labs", "api", "application/json", lab, nil)
	var e map[string]any
	if got := do(t, srv, "POST", "/api/v1/labs/lab1/deploy", "api", "", "", &e); got != 409 || !strings.Contains(e["error"].(string), "no host is online") {
		t.Errorf("deploy with no host online: %d %v", got, e)
	}
}

// TestEveryEndpointNeedsItsToken sends every REST endpoint no token, the
// other role's token and a wrong one: always 401.
func TestEveryEndpointNeedsItsToken(t *testing.T) {
	t.Parallel()
	_, srv := newTestController(t, time.Minute)
	endpoints := []struct{ method, path, role string }{
		{"POST", "/api/v1/hosts/register", "agent"},
		{"POST", "/api/v1/hosts/h/heartbeat", "agent"},
		{"GET", "/api/v1/hosts", "api"},
		{"GET", "/api/v1/hosts/h", "api"},
		{"POST", "/api/v1/labs", "api"},
		{"POST", "/api/v1/labs/apply", "api"},
		{"GET", "/api/v1/labs", "api"},
		{"GET", "/api/v1/labs/l", "api"},
		{"GET", "/api/v1/labs/l/links", "api"},
		{"POST", "/api/v1/labs/l/deploy", "api"},
		{"POST", "/api/v1/labs/l/destroy", "api"},
		{"DELETE", "/api/v1/labs/l", "api"},
		{"POST", "/api/v1/converge", "api"},
		{"GET", "/api/v1/converge", "api"},
	}
	for _, e := range endpoints {
		other := "api"
		if e.role == "api" {
			other = "agent"
		}
		for _, tok := range []string{"", other, "x" + e.role} {
			if got := do(t, srv, e.method, e.path, tok, "", "{}", nil); got != 401 {
				t.Errorf("%s %s with token %q: %d, want 401", e.method, e.path, tok, got)
			}
		}
	}
}

func TestHostileAPIInput(t *testing.T) {
	t.Parallel()
	_, srv := newTestController(t, time.Minute)
	big := "name: x\n#" + strings.Repeat("x", 5<<20) + "\n"
	tests := []struct {
		name, method, path, ctype, body string
		want                            int
		wantIn                          string
	}{
		{"oversized lab file", "POST", "/api/v1/labs", "", big, 413, ""},
		{"oversized JSON", "POST", "/api/v1/labs", "application/json", `{"name":"` + strings.Repeat("x", 5<<20) + `"}`, 413, ""},
		{"lab name with path traversal", "POST", "/api/v1/labs", "", "name: ../../etc\ntopology: {nodes: {a: {}}}\n", 400, "name"},
		{"node name with shell characters", "POST", "/api/v1/labs", "", "name: x\ntopology: {nodes: {\"a;reboot\": {}}}\n", 400, "node name"},
		{"host name with a slash", "POST", "/api/v1/labs", "", "name: x\ntopology: {nodes: {a: {host: ../h}}}\n", 400, "host"},
		{"unknown lab", "POST", "/api/v1/labs/nope/deploy", "", "", 404, ""},
		{"unknown lab to destroy", "POST", "/api/v1/labs/nope/destroy", "", "", 404, ""},
		{"unknown host", "GET", "/api/v1/hosts/nope", "", "", 404, ""},
		{"converge an unknown lab", "POST", "/api/v1/converge?lab=nope", "", "", 404, ""},
	}
	for _, tt := range tests {
		var body json.RawMessage
		got := do(t, srv, tt.method, tt.path, "api", tt.ctype, tt.body, &body)
		if got != tt.want || !strings.Contains(string(body), tt.wantIn) {
			t.Errorf("%s: %d %.200s; want %d containing %q", tt.name, got, body, tt.want, tt.wantIn)
		}
	}
}
