package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

func testConfig(t *testing.T) Config {
	return Config{
		Listen: "127.0.0.1:0", Name: "hostA", DataIP: "10.77.0.1", Advertise: "http://10.77.0.1:7401",
		StateDir: t.TempDir(), Token: "tok", MTU: 1450, HealthInterval: time.Minute, Debounce: 10 * time.Millisecond,
		Heartbeat: 20 * time.Millisecond, RequestTimeout: time.Minute, UnderlayInterval: time.Minute, Version: "test",
		MaxGenerationJump: DefaultMaxGenerationJump,
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.DataIP, bad.Token, bad.Controller, bad.MTU = "hostA", "", "ftp://x", 10
	err := bad.Validate()
	for _, want := range []string{"data-ip", "token", "controller", "mtu"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// TestRegistersAndHeartbeats runs an agent against a recording controller:
// it registers with the agent token, then heartbeats; when the controller
// forgets it (404), it registers again.
func TestRegistersAndHeartbeats(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	var reg wire.RegisterRequest
	forget := false
	ctrl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		calls = append(calls, r.URL.Path)
		switch {
		case r.URL.Path == "/api/v1/hosts/register":
			_ = json.NewDecoder(r.Body).Decode(&reg)
		case forget:
			forget = false
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer ctrl.Close()
	cfg := testConfig(t)
	cfg.Controller = ctrl.URL
	a, err := New(cfg, fabrictest.New(), runtimetest.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitCalls := func(n int) []string {
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			c := append([]string(nil), calls...)
			mu.Unlock()
			if len(c) >= n || time.Now().After(deadline) {
				return c
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c := waitCalls(3)
	if len(c) < 3 || c[0] != "/api/v1/hosts/register" || c[1] != "/api/v1/hosts/hostA/heartbeat" {
		t.Fatalf("calls %v, want register then heartbeats", c)
	}
	mu.Lock()
	if reg.Name != "hostA" || reg.DataIP != "10.77.0.1" || reg.Address != "http://10.77.0.1:7401" || reg.Version != "test" {
		t.Errorf("registration %+v", reg)
	}
	forget = true
	n := len(calls)
	mu.Unlock()
	c = waitCalls(n + 3)
	again := false
	for _, p := range c[n:] {
		again = again || p == "/api/v1/hosts/register"
	}
	if !again {
		t.Errorf("after a 404 heartbeat, calls %v: want a new registration", c[n:])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// The health-monitor suite of reference §7.5, on the fake driver.
func TestRepairCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prepare   func(c *converger, f *fabrictest.Fake)
		wantErr   bool
		wantApply bool
	}{
		{"no tunnels kept: nothing to do", func(*converger, *fabrictest.Fake) {}, false, false},
		{"healthy tunnels are not repaired", func(c *converger, _ *fabrictest.Fake) {
			declareT(t, c, tun("lab-1", 1))
		}, false, false},
		{"missing port is repaired", func(c *converger, f *fabrictest.Fake) {
			declareT(t, c, tun("lab-1", 1))
			f.DeletePort(tun("lab-1", 1).PortName)
		}, false, true},
		{"unreadable bridge skips the repair", func(c *converger, f *fabrictest.Fake) {
			declareT(t, c, tun("lab-1", 1))
			f.DeletePort(tun("lab-1", 1).PortName)
			f.ObserveErr = fabrictest.ErrDown
		}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := newTestConverger(t)
			tt.prepare(c, f)
			before := len(f.Applies())
			err := c.repair(t.Context(), "test")
			if (err != nil) != tt.wantErr {
				t.Fatalf("repair error %v, want error %v", err, tt.wantErr)
			}
			if applied := len(f.Applies()) > before; applied != tt.wantApply {
				t.Errorf("applied %v, want %v", applied, tt.wantApply)
			}
		})
	}
}

func declareT(t *testing.T, c *converger, tunnels ...wire.DeclaredTunnel) {
	t.Helper()
	if _, err := c.declare(t.Context(), wire.DeclareStateRequest{Tunnels: tunnels, Generation: current(c)}); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialRequired: once the agent holds its host's credential, a
// call with the agent token alone is refused: another holder of the shared
// token cannot act on this host.
func TestCredentialRequired(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	held := strings.Repeat("5a", 32)
	if err := os.WriteFile(filepath.Join(cfg.StateDir, credentialFile), []byte(held+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, fabrictest.New(), runtimetest.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, tt := range []struct {
		name, credential string
		want             int
	}{{"none", "", 401}, {"another", strings.Repeat("5b", 32), 401}, {"its own", held, 200}} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/overlay/status", nil)
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		if tt.credential != "" {
			req.Header.Set(wire.CredentialHeader, tt.credential)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s credential: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}

// TestHealthWhileBusy: /healthz answers while a convergence holds the
// converger (a declaration making hundreds of nodes): the controller takes
// an agent that does not answer it for hung.
func TestHealthWhileBusy(t *testing.T) {
	t.Parallel()
	a, err := New(testConfig(t), fabrictest.New(), runtimetest.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	a.conv.mu.Lock()
	defer a.conv.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/healthz", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("healthz while converging: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz while converging: %d", resp.StatusCode)
	}
}

// TestSeveralControllers: an agent given several controllers registers
// with one that answers.
func TestSeveralControllers(t *testing.T) {
	t.Parallel()
	registered := make(chan struct{}, 1)
	ctrl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/hosts/register" {
			select {
			case registered <- struct{}{}:
			default:
			}
		}
	}))
	defer ctrl.Close()
	cfg := testConfig(t)
	cfg.Controller = testbed.RefusedURL(t) + "," + ctrl.URL
	a, err := New(cfg, fabrictest.New(), runtimetest.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-registered:
	case <-time.After(10 * time.Second):
		t.Error("no registration reached the controller that answers")
	}
	cancel()
	<-done
}
