package controller_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
)

// health is what a controller's /healthz says of who leads.
type health struct {
	Leader  string
	Leading bool
}

// leaderSeen waits until the controller at url reports leading (or not) as
// want, and returns how long that took.
func leaderSeen(t *testing.T, c *testbed.Cluster, url string, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var h health
		if c.CallAt(t, url, c.APIToken, "GET", "/healthz", "", nil, &h) == http.StatusOK && h.Leading == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s leading %v: not within %v (last %+v)", url, want, within, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failoverLab is a lab of 2n nodes on two hosts, with n cross-host links,
// and the extra lines given.
func failoverLab(name string, n int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntopology:\n  nodes:\n", name)
	for i := 1; i <= 2*n; i++ {
		host := "hostA"
		if i%2 == 0 {
			host = "hostB"
		}
		fmt.Fprintf(&b, "    r%d: {host: %s}\n", i, host)
	}
	b.WriteString("  links:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    - endpoints: [\"r%d:eth1\", \"r%d:eth1\"]\n", 2*i-1, 2*i)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// sameHostLink joins r1 and r3, both on hostA.
const sameHostLink = `    - endpoints: ["r1:eth2", "r3:eth2"]`

// failover is the failover test's cluster: two controllers on one
// PostgreSQL database, and every agent given both.
type failover struct {
	*cluster
	lease time.Duration
}

// apply applies a lab file through the controller at url.
func (f *failover) apply(t *testing.T, url, file string) {
	t.Helper()
	if code := f.CallAt(t, url, f.APIToken, "POST", "/api/v1/labs/apply", "application/yaml", []byte(file), nil); code != http.StatusAccepted {
		t.Fatalf("apply through %s: %d", url, code)
	}
}

// running waits until the lab, read through url, runs with links links,
// every one up: none is left creating.
func (f *failover) running(t *testing.T, url string, links int) {
	t.Helper()
	var v store.LabView
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if code := f.CallAt(t, url, f.APIToken, "GET", "/api/v1/labs/"+f.lab, "", nil, &v); code == http.StatusOK && v.State == store.LabRunning && len(v.Links) == links {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab not running through %s: %s (%s), %d links", url, v.State, v.StateError, len(v.Links))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, ls := range v.Links {
		if ls.ActualState != "up" {
			t.Errorf("link %s: %s (%s), want up", ls.Name, ls.ActualState, ls.Error)
		}
	}
}

// logMark is where each agent's log was at a moment.
type logMark map[string]int

// mark marks where the agents' logs are now.
func (f *failover) mark() logMark {
	m := logMark{}
	for name, a := range f.Agents {
		m[name] = len(a.Output())
	}
	return m
}

// refusedFrom counts the declarations the agents refused (409) since the
// mark that came from the controller serving at url.
func (f *failover) refusedFrom(url string, since logMark) int {
	n := 0
	for name, a := range f.Agents {
		out := a.Output()
		for _, line := range strings.Split(out[min(since[name], len(out)):], "\n") {
			if strings.Contains(line, "status=409") && strings.Contains(line, "controller="+url) {
				n++
			}
		}
	}
	return n
}

// TestLeaderFailover runs two controllers on one PostgreSQL database, with
// agents that know both. The leader is killed during the deploy of a
// 200-node lab, and the follower finishes it; a leader frozen with a
// declaration on its way has it refused once it resumes, and steps down; a
// leader cut from the database loses the lead; and either controller alone
// applies and lists labs.
func TestLeaderFailover(t *testing.T) {
	const lease = 3 * time.Second
	first, second := testbed.ControllerURL, testbed.SecondControllerURL
	// The frozen leader's call to an agent must outlive its freeze, so the
	// refusal is the agent's, not its own timeout's.
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}, Postgres: true,
		ControllerArgs: []string{"--lease", lease.String(), "--agent-timeout", "60s"},
		AgentArgs:      []string{"--controller", first + "," + second}})
	f := &failover{cluster: &cluster{Cluster: c, lab: c.Bed.ID()}, lease: lease}
	c.StartSecondController(t)
	leaderSeen(t, c, first, true, 2*lease)
	leaderSeen(t, c, second, false, 2*lease)

	t.Run("leader killed during a 200-node deploy", func(t *testing.T) { f.killedDuringDeploy(t) })
	t.Run("frozen leader's late declaration refused", func(t *testing.T) { f.frozenLeader(t) })
	t.Run("leader cut from the database", func(t *testing.T) { f.cutFromDatabase(t) })
	t.Run("either alone applies and lists", func(t *testing.T) { f.eitherAlone(t) })
}

// killedDuringDeploy applies a 200-node lab through the follower and kills
// the leader once the deploy is under way.
func (f *failover) killedDuringDeploy(t *testing.T) {
	second := testbed.SecondControllerURL
	hostA := f.Hosts["hostA"]
	since := f.mark()
	f.apply(t, second, failoverLab(f.lab, 100))
	for deadline := time.Now().Add(time.Minute); len(bridgePorts(t, hostA)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the deploy made nothing on hostA")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := f.Controller.Kill(); err != nil {
		t.Fatal(err)
	}
	took := leaderSeen(t, f.Cluster, second, true, 2*f.lease)
	var v store.LabView
	f.CallAt(t, second, f.APIToken, "GET", "/api/v1/labs/"+f.lab, "", nil, &v)
	states := map[string]int{}
	for _, l := range v.Links {
		states[l.ActualState]++
	}
	if v.State == store.LabRunning {
		t.Fatal("the deploy ended before the leader was killed")
	}
	t.Logf("leader killed with %d ports on hostA's bridge; the follower leads %v later (lease %v); the lab was %s, its links %v",
		len(bridgePorts(t, hostA)), took.Round(10*time.Millisecond), f.lease, v.State, states)
	f.running(t, second, 100)
	if n := f.refusedFrom(second, since); n > 0 {
		t.Errorf("agents refused %d declarations of the new leader", n)
	}
	for _, pair := range [][2]string{{"r1", "r2"}, {"r199", "r200"}} {
		a, b := pair[0], pair[1]
		f.addr(t, a, "eth1", "10.9.1.1/24")
		f.addr(t, b, "eth1", "10.9.1.2/24")
		// Each reply awaited 3 s: the first packets of a new path wait
		// for ARP and go by ovs-vswitchd's slow path on two bridges of
		// some 300 ports; in a whole make test on 2 cores, 2 of 3 replies
		// once came later than 1 s.
		got, err := testbed.PingWithin(t.Context(), ident.NamespaceName(f.lab, a), netip.MustParseAddr("10.9.1.2"), 3, 3*time.Second)
		if err != nil || got != 3 {
			t.Errorf("%s (hostA) to %s (hostB) after the failover: %d/3 (%v)", a, b, got, err)
		}
	}
}

// frozenLeader freezes the leader while its declaration to hostA is on its
// way: hostA drops the controllers' connection attempts, so the call waits
// in connect. The follower takes over and declares; once hostA lets the
// frozen leader's connection through, the leader resumes, sends its late
// declaration, has it refused (409), and steps down without changing
// hostA's bridge.
func (f *failover) frozenLeader(t *testing.T) {
	first, second := testbed.ControllerURL, testbed.SecondControllerURL
	hostA := f.Hosts["hostA"]
	f.StartController(t)
	leaderSeen(t, f.Cluster, first, false, time.Second)
	since := f.mark()

	rule := []string{"INPUT", "-p", "tcp", "-s", testbed.ControllerAddr, "--dport", "7401", "--syn", "-j", "DROP"}
	if out, err := hostA.Exec(t.Context(), "iptables", append([]string{"-I"}, rule...)...); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	dropping := true
	open := func() {
		if dropping {
			dropping = false
			if out, err := hostA.Exec(context.WithoutCancel(t.Context()), "iptables", append([]string{"-D"}, rule...)...); err != nil {
				t.Errorf("iptables: %v\n%s", err, out)
			}
		}
	}
	t.Cleanup(open)
	// The controllers' open connections to hostA's agent are reset, so
	// the next call connects anew.
	if out, err := hostA.Exec(t.Context(), "ss", "-K", "-tn", "sport", "=", ":7401"); err != nil {
		t.Fatalf("ss -K: %v\n%s", err, out)
	}
	f.apply(t, second, failoverLab(f.lab, 100, sameHostLink))
	pid := fmt.Sprintf("pid=%d,", f.Second.PID())
	calling := func(state string) bool {
		out, _ := f.Ctl.Exec(t.Context(), "ss", "-Htnp", "state", state, "dst", hostA.Underlay.Addr().String())
		return strings.Contains(out, pid)
	}
	for deadline := time.Now().Add(30 * time.Second); !calling("syn-sent"); {
		if time.Now().After(deadline) {
			t.Fatal("the leader never called hostA")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := f.Second.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Second.Resume() })
	took := leaderSeen(t, f.Cluster, first, true, 2*f.lease)
	t.Logf("the first leads %v after the leader was frozen", took.Round(10*time.Millisecond))
	open()
	f.running(t, first, 101)
	// The kernel completes the frozen leader's connection at its next
	// SYN; the declaration is written only when the process runs again.
	for deadline := time.Now().Add(45 * time.Second); !calling("established"); {
		if time.Now().After(deadline) {
			t.Fatal("the frozen leader's connection to hostA never opened")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := bridgePorts(t, hostA)
	if err := f.Second.Resume(); err != nil {
		t.Fatal(err)
	}
	leaderSeen(t, f.Cluster, second, false, f.lease)
	for deadline := time.Now().Add(10 * time.Second); f.refusedFrom(second, since) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("hostA refused nothing from the deposed leader:\n%s", lastLines(f.Agents["hostA"].Output(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("hostA refused the deposed leader's late declaration: %s", lastMatch(f.Agents["hostA"].Output(), "status=409"))
	if after := bridgePorts(t, hostA); !maps.Equal(after, before) {
		t.Errorf("hostA's bridge changed when the deposed leader resumed: %d ports → %d", len(before), len(after))
	}
	f.handedOver(t, f.Second, first, since)
}

// handedOver checks that the deposed leader said it stepped down, and that
// no agent refused a declaration of the new leader since the mark.
func (f *failover) handedOver(t *testing.T, deposed *testbed.Process, leader string, since logMark) {
	t.Helper()
	if out := deposed.Output(); !strings.Contains(out, "stepped down") {
		t.Errorf("the deposed leader did not say it stepped down:\n%s", lastLines(out, 20))
	}
	if n := f.refusedFrom(leader, since); n > 0 {
		t.Errorf("agents refused %d declarations of the new leader", n)
	}
}

// cutFromDatabase cuts the leader (the first) from the database, its open
// connections ended and new ones refused, until the follower leads and has
// deployed a change.
func (f *failover) cutFromDatabase(t *testing.T) {
	first, second := testbed.ControllerURL, testbed.SecondControllerURL
	leaderSeen(t, f.Cluster, second, false, f.lease)
	relay := f.Relays[first]
	since := f.mark()
	relay.Cut()
	took := leaderSeen(t, f.Cluster, second, true, 2*f.lease)
	t.Logf("the second leads %v after the leader was cut from the database", took.Round(10*time.Millisecond))
	f.apply(t, second, failoverLab(f.lab, 100))
	f.running(t, second, 100)
	if err := relay.Restore(); err != nil {
		t.Fatal(err)
	}
	leaderSeen(t, f.Cluster, first, false, 2*f.lease)
	f.handedOver(t, f.Controller, second, since)
}

// eitherAlone kills each controller in turn: the other alone leads,
// applies and lists.
func (f *failover) eitherAlone(t *testing.T) {
	first, second := testbed.ControllerURL, testbed.SecondControllerURL
	for _, tt := range []struct {
		name       string
		kill       func() error
		url        string
		file       string
		otherStart func(testbed.TB)
	}{
		{"through the first, the second killed", func() error { return f.Second.Kill() }, first, failoverLab(f.lab, 100, sameHostLink), f.StartSecondController},
		{"through the second, the first killed", func() error { return f.Controller.Kill() }, second, failoverLab(f.lab, 100), nil},
	} {
		if err := tt.kill(); err != nil {
			t.Fatal(err)
		}
		leaderSeen(t, f.Cluster, tt.url, true, 2*f.lease)
		f.apply(t, tt.url, tt.file)
		var labs []store.Lab
		if code := f.CallAt(t, tt.url, f.APIToken, "GET", "/api/v1/labs", "", nil, &labs); code != http.StatusOK || len(labs) != 1 {
			t.Errorf("%s: ls: %d %+v", tt.name, code, labs)
		}
		if tt.otherStart != nil {
			tt.otherStart(t)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func lastMatch(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
