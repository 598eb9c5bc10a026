package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// testStore opens an empty SQLite store for the test, and a quiet logger.
func testStore(t *testing.T) (*store.Store, *slog.Logger) {
	t.Helper()
	return testStoreAt(t, "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
}

// testStoreAt opens the store at dsn until the test ends, and a quiet
// logger.
func testStoreAt(t *testing.T, dsn string) (*store.Store, *slog.Logger) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(t.Context(), dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, log
}

func newTestController(t *testing.T, offlineAfter time.Duration) (*Controller, *httptest.Server) {
	t.Helper()
	st, log := testStore(t)
	return newTestControllerOn(t, st, log, offlineAfter)
}

// newTestControllerOn builds a controller on st and serves its API.
func newTestControllerOn(t *testing.T, st *store.Store, log *slog.Logger, offlineAfter time.Duration) (*Controller, *httptest.Server) {
	t.Helper()
	c, err := New(Config{Listen: ":0", AgentToken: "agent", APIToken: "api", AgentTimeout: time.Second, DeclareTimeout: time.Minute, MaxRequests: 64, OfflineAfter: offlineAfter, ReconcileInterval: time.Hour, ConvergeEvery: 1, MaxLabNodes: 5000, MaxLabLinks: 20000, Lease: 10 * time.Second}, st, log)
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

// TestLabCaps: a lab over the controller's caps on nodes or links is
// refused with 413, naming the cap, and nothing is stored.
func TestLabCaps(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	c.cfg.MaxLabNodes, c.cfg.MaxLabLinks = 2, 1
	tests := []struct{ name, lab, want string }{
		{"nodes", "name: big\ntopology:\n  nodes: {a: {}, b: {}, c: {}}\n", "lab big has 3 nodes: at most 2 (the controller's --max-lab-nodes)"},
		{"links", "name: big\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth2, b:eth2]\n",
			"lab big has 2 links: at most 1 (the controller's --max-lab-links)"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/labs", "/api/v1/labs/apply"} {
			var out map[string]any
			if code := do(t, srv, "POST", path, "api", "application/yaml", tt.lab, &out); code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(out["error"]), tt.want) {
				t.Errorf("%s, %s: %d %v; want 413 saying %q", tt.name, path, code, out, tt.want)
			}
		}
	}
	var labs []wire.Lab
	if code := do(t, srv, "GET", "/api/v1/labs", "api", "", "", &labs); code != 200 || len(labs) != 0 {
		t.Errorf("labs after the refusals: %d %+v", code, labs)
	}
}

// TestErrorTexts: a JSON body of the wrong type is told in JSON's terms,
// and an internal error answers an id, not its text.
func TestErrorTexts(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	var out map[string]any
	if code := do(t, srv, "POST", "/api/v1/hosts/register", "agent", "application/json", `{"name": "h1", "address": 7}`, &out); code != 400 ||
		fmt.Sprint(out["error"]) != "malformed body: address: a number where a string is wanted" {
		t.Errorf("a number for a string: %d %v", code, out)
	}
	c.store.Close() // every query fails now
	if code := do(t, srv, "GET", "/api/v1/labs", "api", "", "", &out); code != 500 ||
		!regexp.MustCompile(`^internal error [0-9a-f]{12}: the controller's log has the detail$`).MatchString(fmt.Sprint(out["error"])) {
		t.Errorf("an internal error: %d %v", code, out)
	}
}

// TestHostCredentialRules: an agent that keeps a credential is bound to its
// host's name at its first registration; another agent cannot register the
// name or heartbeat for it; an agent without credentials (the original's)
// registers as before; a well-formed credential an agent already holds is
// kept (a database restored from a backup).
func TestHostCredentialRules(t *testing.T) {
	t.Parallel()
	_, srv := newTestController(t, time.Minute)
	register := func(name, credential string, caps ...string) (int, wire.RegisterResponse) {
		body, _ := json.Marshal(wire.RegisterRequest{Name: name, Address: "http://10.77.0.1:7401", DataIP: "10.77.0.1", Capabilities: caps, Credential: credential})
		var out wire.RegisterResponse
		code := do(t, srv, "POST", "/api/v1/hosts/register", "agent", "application/json", string(body), &out)
		return code, out
	}
	heartbeat := func(name, credential string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/api/v1/hosts/"+name+"/heartbeat", nil)
		req.Header.Set("Authorization", "Bearer agent")
		if credential != "" {
			req.Header.Set(wire.CredentialHeader, credential)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	code, first := register("h1", "", wire.CapHostCredential)
	if code != 200 || len(first.Credential) != 64 {
		t.Fatalf("first registration: %d %+v", code, first)
	}
	for _, tt := range []struct {
		name, credential string
		want             int
	}{{"none", "", 403}, {"another", strings.Repeat("ab", 32), 403}, {"its own", first.Credential, 200}} {
		if code, out := register("h1", tt.credential, wire.CapHostCredential); code != tt.want || tt.want == 200 && out.Credential != first.Credential {
			t.Errorf("registering h1 with %s credential: %d %+v, want %d", tt.name, code, out, tt.want)
		}
		if code := heartbeat("h1", tt.credential); code != tt.want {
			t.Errorf("heartbeat of h1 with %s credential: %d, want %d", tt.name, code, tt.want)
		}
	}
	if code, _ := register("h1", ""); code != 403 {
		t.Errorf("an agent without credentials taking h1: %d, want 403", code)
	}
	if code, out := register("old", ""); code != 200 || out.Credential != "" {
		t.Errorf("an agent without credentials: %d %+v", code, out)
	}
	if code, out := register("old", ""); code != 200 || heartbeat("old", "") != 200 {
		t.Errorf("it registers again as before: %d %+v", code, out)
	}
	// Unbound by the operator (a reinstalled host), the name goes to the
	// next agent that registers it.
	if code := do(t, srv, "POST", "/api/v1/hosts/h1/unbind", "api", "", "", nil); code != 200 {
		t.Fatalf("unbind: %d", code)
	}
	if code, out := register("h1", "", wire.CapHostCredential); code != 200 || out.Credential == first.Credential || len(out.Credential) != 64 {
		t.Errorf("registering h1 after unbind: %d %+v, want a new credential", code, out)
	}
	held := strings.Repeat("0f", 32)
	if code, out := register("restored", held, wire.CapHostCredential); code != 200 || out.Credential != held {
		t.Errorf("a credential the agent holds: %d %+v, want it kept", code, out)
	}
}

// TestReadToken: the read-only token reads the API and the web view and
// changes nothing.
func TestReadToken(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	c.cfg.ReadToken = "read"
	tests := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/labs", "read", 200},
		{"GET", "/api/v1/hosts", "read", 200},
		{"GET", "/ui/", "read", 200},
		{"POST", "/api/v1/labs", "read", 401},
		{"POST", "/api/v1/converge", "read", 401},
		{"POST", "/api/v1/labs/x/nodes/n/exec", "read", 401},
		{"DELETE", "/api/v1/hosts/h", "read", 401},
		{"POST", "/api/v1/hosts/register", "read", 401},
		{"GET", "/api/v1/labs", "api", 200},
		{"GET", "/api/v1/labs", "nope", 401},
	}
	for _, tt := range tests {
		if code := do(t, srv, tt.method, tt.path, tt.token, "application/json", "{}", nil); code != tt.want {
			t.Errorf("%s %s with the %s token: %d, want %d", tt.method, tt.path, tt.token, code, tt.want)
		}
	}
}
