package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// heartbeats is a controller that only records what agents report of the
// underlay: the MTU at registration, and the last heartbeat, per host.
type heartbeats struct {
	mu sync.Mutex
	// mu guards the following.
	registered map[string]int // underlay MTU by host
	last       map[string]wire.HeartbeatRequest
}

func (c *heartbeats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch host, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/hosts/"), "/heartbeat"); {
	case r.URL.Path == "/api/v1/hosts/register":
		var req wire.RegisterRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		c.registered[req.Name] = req.UnderlayMTU
	case ok:
		var req wire.HeartbeatRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		c.last[host] = req
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// underlay renders a host's last heartbeat as "mtu M: peer status need
// path, …".
func (c *heartbeats) underlay(host string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	hb, ok := c.last[host]
	if !ok {
		return "no heartbeat"
	}
	var out []string
	for _, u := range hb.Underlay {
		out = append(out, fmt.Sprintf("%s %s %d %d", u.PeerIP, u.Status, u.NeedMTU, u.PathMTU))
	}
	return fmt.Sprintf("mtu %d: %s", hb.UnderlayMTU, strings.Join(out, ", "))
}

// serveControllerOn serves c on a bed machine's underlay address, so the
// agents reach it as they would a controller.
func serveControllerOn(t *testing.T, m *testbed.Host, c http.Handler) string {
	t.Helper()
	addr := netip.AddrPortFrom(m.Underlay.Addr(), 7400).String()
	var ln net.Listener
	err := nlns.Do(filepath.Join(nlns.Dir, m.Netns), func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("controller: %v", err)
		}
	})
	return "http://" + addr
}

// TestUnderlayCheck runs two agents that share a link against a recording
// controller, and breaks the underlay between them: a short MTU on one
// host, then its VXLAN port blocked. Each agent must report each cause to
// the controller within a few check intervals, and the repair too.
func TestUnderlayCheck(t *testing.T) {
	bed := testbed.Start(t)
	m, err := bed.AddMachine(t.Context(), "ctrl", netip.MustParsePrefix("10.77.0.100/24"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl := &heartbeats{registered: map[string]int{}, last: map[string]wire.HeartbeatRequest{}}
	url := serveControllerOn(t, m, ctrl)
	agents := map[string]*agentHost{}
	for name, ip := range map[string]string{"hostA": "10.77.0.1", "hostB": "10.77.0.2"} {
		a := prepareAgentHost(t, bed, name, ip)
		a.extra = []string{"--controller", url, "--underlay-interval", "1s"}
		a.start(t)
		agents[name] = a
	}
	a, b := agents["hostA"], agents["hostB"]
	lab := a.lab
	link := ident.LinkName("r1:eth1", "r2:eth1")
	tunnel := func(local, remote string, tag int) wire.HostDeclaration {
		return wire.HostDeclaration{Generation: gen(1), DeclaredLabs: []string{lab}, Tunnels: []wire.DeclaredTunnel{{LinkID: link, LabID: lab,
			VNI: int(ident.VNI(lab, link)), LocalIP: local, RemoteIP: remote, ExpectedVLAN: tag, PortName: ident.PortName(lab, link), MTU: 1450}}}
	}
	// waitFor waits until both hosts report want, and returns how long it took.
	waitFor := func(t *testing.T, wantA, wantB string) time.Duration {
		t.Helper()
		start := time.Now()
		for deadline := start.Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			gotA, gotB := ctrl.underlay("hostA"), ctrl.underlay("hostB")
			if gotA == wantA && gotB == wantB {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 20s:\n hostA: %s, want %s\n hostB: %s, want %s", gotA, wantA, gotB, wantB)
			}
		}
	}
	exec := func(t *testing.T, h *agentHost, args ...string) {
		t.Helper()
		if out, err := h.host.Exec(t.Context(), args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	const (
		okA = "mtu 1500: 10.77.0.2 ok 1500 0"
		okB = "mtu 1500: 10.77.0.1 ok 1500 0"
	)

	t.Run("links declared: ok at the size they need", func(t *testing.T) {
		a.declareHost(t, tunnel("10.77.0.1", "10.77.0.2", 2100))
		b.declareHost(t, tunnel("10.77.0.2", "10.77.0.1", 2200))
		took := waitFor(t, okA, okB)
		t.Logf("both ok %v after the declarations", took.Round(time.Millisecond))
		ctrl.mu.Lock()
		defer ctrl.mu.Unlock()
		if ctrl.registered["hostA"] != 1500 || ctrl.registered["hostB"] != 1500 {
			t.Errorf("underlay MTU at registration: %v, want 1500 each", ctrl.registered)
		}
	})
	t.Run("one host's underlay MTU lowered", func(t *testing.T) {
		exec(t, b, "ip", "link", "set", testbed.UnderlayIface, "mtu", "1400")
		took := waitFor(t, "mtu 1500: 10.77.0.2 mtu 1500 1400", "mtu 1400: 10.77.0.1 mtu 1500 1400")
		t.Logf("reported %v after the change", took.Round(time.Millisecond))
		exec(t, b, "ip", "link", "set", testbed.UnderlayIface, "mtu", "1500")
		took = waitFor(t, okA, okB)
		t.Logf("ok again %v after the repair", took.Round(time.Millisecond))
	})
	t.Run("one host's VXLAN port blocked", func(t *testing.T) {
		rule := []string{"INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"}
		exec(t, b, append([]string{"iptables", "-A"}, rule...)...)
		t.Cleanup(func() { _, _ = b.host.Exec(t.Context(), "iptables", append([]string{"-D"}, rule...)...) })
		took := waitFor(t, "mtu 1500: 10.77.0.2 port_blocked 1500 0", "mtu 1500: 10.77.0.1 port_blocked 1500 0")
		t.Logf("reported %v after the change", took.Round(time.Millisecond))
		exec(t, b, append([]string{"iptables", "-D"}, rule...)...)
		took = waitFor(t, okA, okB)
		t.Logf("ok again %v after the repair", took.Round(time.Millisecond))
	})
	t.Run("the link declared away: no peers", func(t *testing.T) {
		for _, h := range []*agentHost{a, b} {
			h.declareHost(t, wire.HostDeclaration{Generation: gen(2), DeclaredLabs: []string{lab}})
		}
		waitFor(t, "mtu 1500: ", "mtu 1500: ")
	})
	t.Run("metrics", func(t *testing.T) {
		var text string
		for _, h := range []*agentHost{a, b} {
			text = h.metrics(t)
			for _, want := range []string{`netloom_agent_underlay_peers{status="ok"} 0`, "netloom_agent_underlay_mtu 1500", "netloom_agent_underlay_check_seconds_count"} {
				if !strings.Contains(text, want) {
					t.Errorf("%s metrics lack %q", h.name, want)
				}
			}
		}
		if t.Failed() {
			t.Logf("hostB metrics:\n%s", text)
		}
	})
	if names, _ := nlns.List(); !slices.Contains(names, ident.UnderlayNamespaceName(a.host.Netns, "hostA")) {
		t.Errorf("no probe namespace of hostA among %v", names)
	}
}

// metrics reads the agent's metrics as text.
func (a *agentHost) metrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+apiAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %d, %v", resp.StatusCode, err)
	}
	return string(body)
}
