package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

const (
	token   = "s3cret-agent-token"
	bridge  = "netloom0"
	apiAddr = "127.0.0.1:7401"
)

var netloomBin string

// TestMain builds the netloom binary once; the tests run it as a process
// inside simulated hosts, as `ip netns exec hostA netloom agent` would.
func TestMain(m *testing.M) {
	os.Exit(testbed.RunWithNetloom(m, &netloomBin))
}

// agentHost is a simulated host with a running agent.
type agentHost struct {
	lab    string // named after the bed, so its node namespaces go with it
	name   string
	dataIP string
	docker string // the socket of the bed's Docker daemon, if it runs one
	host   *testbed.Host
	proc   *testbed.Process
	http   *http.Client
	extra  []string // more agent flags; a flag given again overrides start's
}

func newAgentHost(t *testing.T) *agentHost {
	t.Helper()
	return newAgentHostOn(t, testbed.Start(t), "hostA", "10.77.0.1")
}

// newAgentHostOn adds a host with a running agent to a bed; with docker
// (a daemon's socket), the agent runs nodes with an image there.
func newAgentHostOn(t *testing.T, bed *testbed.Bed, name, dataIP string, docker ...string) *agentHost {
	t.Helper()
	a := prepareAgentHost(t, bed, name, dataIP, docker...)
	a.start(t)
	return a
}

// prepareAgentHost adds a host for an agent to a bed, without starting it.
func prepareAgentHost(t *testing.T, bed *testbed.Bed, name, dataIP string, docker ...string) *agentHost {
	t.Helper()
	h, err := bed.AddHost(t.Context(), name, netip.MustParsePrefix(dataIP+"/24"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &agentHost{lab: bed.ID(), name: name, dataIP: dataIP, host: h, http: h.HTTPClient()}
	if len(docker) > 0 {
		a.docker = docker[0]
	}
	t.Cleanup(func() {
		if t.Failed() && a.proc != nil {
			out := a.proc.Output()
			t.Logf("agent %s output (last 4 KiB):\n%s", name, out[max(0, len(out)-4096):])
		}
	})
	return a
}

// start runs the agent, with a controller that cannot be reached, and waits
// until it has restored.
func (a *agentHost) start(t *testing.T) {
	t.Helper()
	args := append([]string{"agent",
		"--listen", apiAddr, "--name", a.name, "--data-ip", a.dataIP,
		"--controller", "http://127.0.0.1:1", // nothing listens there
		"--state-dir", filepath.Join(a.host.Dir, "agent"),
		"--ovsdb", a.host.OVSDB(), "--bridge", bridge, "--token-file", filepath.Join(a.host.Dir, "token"),
		"--docker-socket", a.docker, "--log-level", "debug"}, a.extra...)
	p, err := a.host.Start(t.Context(), netloomBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	a.proc = p
	deadline := time.Now().Add(60 * time.Second)
	for {
		var health struct{ Ready bool }
		if code := a.call(t, "GET", "/healthz", "", nil, &health); code == 200 && health.Ready {
			return
		}
		if err := p.Exited(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready after 60s:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends a request with the given token ("" for none) and decodes the
// answer into out; it returns the status code, or 0 when nothing answered.
func (a *agentHost) call(t *testing.T, method, path, tok string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if raw, ok := body.([]byte); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+apiAddr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func (a *agentHost) declare(t *testing.T, req wire.DeclareStateRequest) (int, wire.DeclareStateResponse) {
	t.Helper()
	if req.Generation == nil {
		req.Generation = a.current(t)
	}
	var resp wire.DeclareStateResponse
	code := a.call(t, "POST", "/overlay/declare-state", token, req, &resp)
	return code, resp
}

// current is the generation the agent applied last, for a declaration
// that does not test fencing: the same generation again is always taken.
func (a *agentHost) current(t *testing.T) *int64 {
	t.Helper()
	var st wire.OverlayStatus
	if code := a.call(t, "GET", "/overlay/status", token, nil, &st); code != 200 {
		t.Fatalf("status of %s: %d", a.name, code)
	}
	return &st.Generation
}

// bridgePorts reads the bridge by hand: port name → tag, and the ports'
// netloom-lab marks.
func (a *agentHost) bridgePorts(t *testing.T) (tags map[string]int, labs map[string]string) {
	t.Helper()
	out, err := a.host.VSCtl(t.Context(), "--format=csv", "--data=bare", "--no-headings", "--columns=name,tag,external_ids", "list", "Port")
	if err != nil {
		t.Fatal(err)
	}
	tags, labs = map[string]int{}, map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.SplitN(line, ",", 3)
		if len(fields) < 3 || fields[0] == bridge {
			continue
		}
		tags[fields[0]], _ = strconv.Atoi(fields[1])
		for _, kv := range strings.Split(strings.Trim(fields[2], `"`), " ") {
			if v, ok := strings.CutPrefix(kv, ident.LabKey+"="); ok {
				labs[fields[0]] = v
			}
		}
	}
	return tags, labs
}

// interruptedRE is iproute2's warning on a dump that raced with changes.
var interruptedRE = regexp.MustCompile(`(?m)^Dump was interrupted.*\n?`)

// vxlanDevices reads the kernel's VXLAN devices by hand: name → ifindex and
// remote.
func (a *agentHost) vxlanDevices(t *testing.T) map[string]device {
	t.Helper()
	var out string
	for range 20 {
		var err error
		out, err = a.host.Exec(t.Context(), "ip", "-d", "-j", "link", "show", "type", "vxlan")
		if err != nil {
			t.Fatal(err)
		}
		// A dump that raced with link changes says so; take another.
		if !strings.Contains(out, "Dump was interrupted") {
			break
		}
	}
	// Still racing (devices made by the hundred): the last dump, its
	// warning off the JSON, is close enough for a count.
	out = interruptedRE.ReplaceAllString(out, "")
	var links []struct {
		Ifname   string `json:"ifname"`
		Ifindex  int    `json:"ifindex"`
		Linkinfo struct {
			InfoData struct {
				ID     int    `json:"id"`
				Remote string `json:"remote"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("ip -j link: %v", err)
	}
	devs := map[string]device{}
	for _, l := range links {
		devs[l.Ifname] = device{ifindex: l.Ifindex, vni: l.Linkinfo.InfoData.ID, remote: l.Linkinfo.InfoData.Remote}
	}
	return devs
}

type device struct {
	ifindex, vni int
	remote       string
}

func (a *agentHost) nextCfg(t *testing.T) int {
	t.Helper()
	out, err := a.host.VSCtl(t.Context(), "get", "Open_vSwitch", ".", "next_cfg")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// waitFor polls cond for up to 10 s and returns how long it took.
func (a *agentHost) waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func tunnel(lab string, i int, tag int) wire.DeclaredTunnel {
	link := ident.LinkName(fmt.Sprintf("r%d:eth1", i), fmt.Sprintf("s%d:eth1", i))
	return wire.DeclaredTunnel{
		LinkID: link, LabID: lab, VNI: int(ident.VNI(lab, link)), LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2",
		ExpectedVLAN: tag, PortName: ident.PortName(lab, link), MTU: 1450,
	}
}

func statusesOf(resp wire.DeclareStateResponse) string {
	var s []string
	for _, r := range resp.Results {
		s = append(s, r.Status)
	}
	return strings.Join(s, ",")
}

func gen(n int64) *int64 { return &n }

// TestAgentOverHTTP drives a running agent through its API, step by step,
// and checks the bridge and the kernel by hand after each step.
func TestAgentOverHTTP(t *testing.T) {
	a := newAgentHost(t)
	t1, t2, t3 := tunnel("lab-1", 1, 2051), tunnel("lab-1", 2, 2052), tunnel("lab-1", 3, 2053)
	t4 := tunnel("lab-2", 4, 2054)

	t.Run("auth", func(t *testing.T) {
		req := wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1}, Generation: gen(1)}
		for _, tok := range []string{"", "wrong"} {
			var e wire.ErrorResponse
			if code := a.call(t, "POST", "/overlay/declare-state", tok, req, &e); code != 401 {
				t.Errorf("token %q: status %d, want 401", tok, code)
			}
		}
		if code := a.call(t, "GET", "/overlay/status", "", nil, nil); code != 401 {
			t.Errorf("status without token: %d, want 401", code)
		}
		if code := a.call(t, "GET", "/metrics", "", nil, nil); code != 401 {
			t.Errorf("metrics without token: %d, want 401", code)
		}
		if code := a.call(t, "GET", "/healthz", "", nil, nil); code != 200 {
			t.Errorf("healthz without token: %d, want 200", code)
		}
		if tags, _ := a.bridgePorts(t); len(tags) != 0 {
			t.Errorf("unauthorised requests changed the bridge: %v", tags)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		bad := t1
		bad.VNI = 1 << 25
		bad.RemoteIP = "10.77.0"
		cfg := a.nextCfg(t)
		var e wire.ErrorResponse
		code := a.call(t, "POST", "/overlay/declare-state", token, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{bad, t2}, Generation: gen(1)}, &e)
		if code != 400 || len(e.Problems) != 2 {
			t.Fatalf("status %d, problems %+v; want 400 naming vni and remote_ip", code, e.Problems)
		}
		if e.Problems[0].Field != "tunnels[0].vni" || e.Problems[1].Field != "tunnels[0].remote_ip" {
			t.Errorf("problems %+v", e.Problems)
		}
		if code := a.call(t, "POST", "/overlay/declare-state", token, []byte(`{"tunnels": [`), &e); code != 400 {
			t.Errorf("malformed JSON: status %d, want 400", code)
		}
		if got := a.nextCfg(t); got != cfg {
			t.Errorf("bad input wrote to OVSDB: next_cfg %d → %d", cfg, got)
		}
		if devs := a.vxlanDevices(t); len(devs) != 0 {
			t.Errorf("bad input made devices: %v", devs)
		}
	})

	t.Run("declare creates, then converges with no writes", func(t *testing.T) {
		code, resp := a.declare(t, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1, t2, t3, t4}, Generation: gen(10)})
		if code != 200 || statusesOf(resp) != "created,created,created,created" {
			t.Fatalf("status %d results %+v", code, resp.Results)
		}
		tags, labs := a.bridgePorts(t)
		for _, tn := range []wire.DeclaredTunnel{t1, t2, t3, t4} {
			if tags[tn.PortName] != tn.ExpectedVLAN || labs[tn.PortName] != tn.LabID {
				t.Errorf("port %s: tag %d lab %q, want %d %q", tn.PortName, tags[tn.PortName], labs[tn.PortName], tn.ExpectedVLAN, tn.LabID)
			}
		}
		cfg, devs := a.nextCfg(t), a.vxlanDevices(t)
		code, resp = a.declare(t, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1, t2, t3, t4}, Generation: gen(11)})
		if code != 200 || statusesOf(resp) != "converged,converged,converged,converged" {
			t.Fatalf("again: status %d results %+v", code, resp.Results)
		}
		if got := a.nextCfg(t); got != cfg {
			t.Errorf("a converged declaration wrote to OVSDB: next_cfg %d → %d", cfg, got)
		}
		for name, d := range a.vxlanDevices(t) {
			if devs[name] != d {
				t.Errorf("device %s changed: %+v → %+v", name, devs[name], d)
			}
		}
	})

	t.Run("drifted tag is updated, changed remote recreated", func(t *testing.T) {
		before := a.vxlanDevices(t)
		t1.ExpectedVLAN = 2061
		t2.RemoteIP = "10.77.0.3"
		code, resp := a.declare(t, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1, t2, t3, t4}, Generation: gen(12)})
		if code != 200 || statusesOf(resp) != "updated,updated,converged,converged" {
			t.Fatalf("status %d results %+v", code, resp.Results)
		}
		tags, _ := a.bridgePorts(t)
		after := a.vxlanDevices(t)
		if tags[t1.PortName] != 2061 || after[t1.PortName] != before[t1.PortName] {
			t.Errorf("retag: tag %d, device %+v → %+v; want 2061 and the same device", tags[t1.PortName], before[t1.PortName], after[t1.PortName])
		}
		d := after[t2.PortName]
		if d.remote != "10.77.0.3" || d.ifindex == before[t2.PortName].ifindex {
			t.Errorf("new remote: device %+v (was %+v); want recreated with remote 10.77.0.3", d, before[t2.PortName])
		}
	})

	t.Run("orphans: owned in scope removed, other lab and unowned kept", func(t *testing.T) {
		if _, err := a.host.VSCtl(t.Context(), "add-port", bridge, "vxlan-deadbeef", "tag=2099", "--", "set", "interface", "vxlan-deadbeef", "type=internal"); err != nil {
			t.Fatal(err)
		}
		code, resp := a.declare(t, wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{t1, t2}, DeclaredLabs: []string{"lab-1"}, Generation: gen(13)})
		if code != 200 || len(resp.OrphansRemoved) != 1 || resp.OrphansRemoved[0] != t3.PortName {
			t.Fatalf("status %d orphans %v, want only %s", code, resp.OrphansRemoved, t3.PortName)
		}
		tags, _ := a.bridgePorts(t)
		if _, ok := tags[t3.PortName]; ok {
			t.Error("orphan still on the bridge")
		}
		if _, ok := a.vxlanDevices(t)[t3.PortName]; ok {
			t.Error("orphan's device still exists")
		}
		if _, ok := tags[t4.PortName]; !ok {
			t.Error("lab-2's tunnel, not in scope, was removed")
		}
		if _, ok := tags["vxlan-deadbeef"]; !ok {
			t.Error("an unowned port was removed")
		}
	})

	t.Run("stale generation is refused", func(t *testing.T) {
		cfg := a.nextCfg(t)
		var e wire.ErrorResponse
		if code := a.call(t, "POST", "/overlay/declare-state", token, wire.DeclareStateRequest{DeclaredLabs: []string{"lab-1", "lab-2"}, Generation: gen(5)}, &e); code != 409 {
			t.Fatalf("status %d (%s), want 409", code, e.Error)
		}
		if got := a.nextCfg(t); got != cfg {
			t.Error("a stale declaration wrote to OVSDB")
		}
	})

	t.Run("drift by hand is repaired without a declaration", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			do   []string
			ok   func() bool
		}{
			{"port deleted", []string{"ovs-vsctl", "del-port", t1.PortName}, func() bool { tags, _ := a.bridgePorts(t); return tags[t1.PortName] == t1.ExpectedVLAN }},
			{"tag changed", []string{"ovs-vsctl", "set", "port", t2.PortName, "tag=7"}, func() bool { tags, _ := a.bridgePorts(t); return tags[t2.PortName] == t2.ExpectedVLAN }},
			{"device deleted", []string{"ip", "link", "del", t4.PortName}, func() bool {
				d, ok := a.vxlanDevices(t)[t4.PortName]
				return ok && d.remote == t4.RemoteIP
			}},
		} {
			var err error
			if tt.do[0] == "ovs-vsctl" {
				_, err = a.host.VSCtl(t.Context(), tt.do[1:]...)
			} else {
				_, err = a.host.Exec(t.Context(), tt.do[0], tt.do[1:]...)
			}
			if err != nil {
				t.Fatal(err)
			}
			took := a.waitFor(t, tt.name+" repaired", tt.ok)
			t.Logf("%s: repaired after %v", tt.name, took)
		}
		var body string
		var metrics bytes.Buffer
		if code := a.call(t, "GET", "/metrics", token, nil, nil); code != 200 {
			t.Fatalf("metrics: %d", code)
		}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+apiAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(&metrics, resp.Body)
		resp.Body.Close()
		body = metrics.String()
		for _, want := range []string{"netloom_agent_repairs_total{cause=", "netloom_agent_orphans_removed_total 1", `netloom_agent_tunnel_results_total{status="created"} 4`, "netloom_agent_convergence_seconds_count", "netloom_agent_stale_declarations_total 1"} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}
