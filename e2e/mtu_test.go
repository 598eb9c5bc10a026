package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// TestMTU applies a lab with a jumbo same-host link and a cross-host link
// of the default MTU over a 1500-byte underlay, and asks the nodes' kernels:
// both ends of each link have its MTU, a DF ping of the full MTU passes and
// one byte more fails at the sender with "message too long", never
// silently; an endpoint's mac is its interface's. A jumbo MTU on a
// cross-host link is a plan-time error with the numbers.
func TestMTU(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}})
	lab := c.Bed.ID()
	const file = `name: %s
topology:
  nodes:
    a1: {host: hostA, exec: ["ip addr add 10.5.1.1/24 dev eth1", "ip addr add 10.5.2.1/24 dev eth2"]}
    a2: {host: hostA, exec: ["ip addr add 10.5.1.2/24 dev eth1"]}
    b1: {host: hostB, exec: ["ip addr add 10.5.2.2/24 dev eth1"]}
  links:
    - endpoints: ["a1:eth1", "a2:eth1"]
      mtu: 9000
    - type: veth
      endpoints: [{node: a1, interface: eth2, mac: "02:00:00:00:aa:01"}, {node: b1, interface: eth1}]
%s`
	path := c.Ctl.Dir + "/mtu.yaml"
	if err := writeFile(path, fmt.Sprintf(file, lab, "")); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	in := func(node string, args ...string) (string, error) {
		return testbed.ExecIn(t.Context(), ident.NamespaceName(lab, node), args[0], args[1:]...)
	}
	for _, want := range []struct {
		node, iface string
		mtu         int
	}{{"a1", "eth1", 9000}, {"a2", "eth1", 9000}, {"a1", "eth2", 1450}, {"b1", "eth1", 1450}} {
		out, err := in(want.node, "ip", "-o", "link", "show", want.iface)
		if err != nil || !strings.Contains(out, fmt.Sprintf(" mtu %d ", want.mtu)) {
			t.Errorf("%s:%s: want mtu %d: %v\n%s", want.node, want.iface, want.mtu, err, out)
		}
	}
	dfPing := func(from, to string, size int) (string, error) {
		return in(from, "ping", "-c", "2", "-W", "1", "-M", "do", "-s", fmt.Sprint(size), to)
	}
	for _, p := range []struct {
		what, from, to string
		mtu            int
	}{{"same-host jumbo", "a1", "10.5.1.2", 9000}, {"cross-host", "a1", "10.5.2.2", 1450}} {
		if out, err := dfPing(p.from, p.to, p.mtu-28); err != nil {
			t.Errorf("%s: a DF ping of the full MTU (%d bytes) does not pass: %v\n%s", p.what, p.mtu, err, out)
		}
		out, err := dfPing(p.from, p.to, p.mtu-27)
		if err == nil || !strings.Contains(out, "message too long") {
			t.Errorf("%s: a DF ping one byte over the MTU: %v, want the sender's \"message too long\"\n%s", p.what, err, out)
		}
	}
	if out, err := in("a1", "cat", "/sys/class/net/eth2/address"); err != nil || strings.TrimSpace(out) != "02:00:00:00:aa:01" {
		t.Errorf("a1:eth2's MAC %q (%v), want the lab file's 02:00:00:00:aa:01", out, err)
	}
	out, err := c.CLI(t, "link", "ls", lab)
	if err != nil || !strings.Contains(out, " 9000 ") || !strings.Contains(out, " 1450 ") {
		t.Errorf("link ls does not show the MTUs: %v\n%s", err, out)
	}

	// Jumbo frames across hosts need a jumbo underlay.
	if err := writeFile(path, fmt.Sprintf(file, lab, "    - endpoints: [\"a2:eth2\", \"b1:eth2\"]\n      mtu: 9000\n")); err != nil {
		t.Fatal(err)
	}
	out, err = c.CLI(t, "lab", "apply", "-f", path, "--plan")
	if err == nil || !strings.Contains(out, "link a2:eth2-b1:eth2: mtu 9000 needs 9050-byte packets on the underlay between hostA (MTU 1500) and hostB (MTU 1500): at most 1450 fits") {
		t.Errorf("a jumbo cross-host link over a 1500 underlay: %v\n%s", err, out)
	}
	if out, err := c.CLI(t, "lab", "destroy", lab, "--delete"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
}

// TestUnderlayChecks breaks the underlay between two hosts the way it breaks
// in the field — one host's underlay MTU lowered to 1400, UDP 4789 dropped
// by a firewall rule inside one host — and sees each shown with its cause on
// the link (not up) and the host within one check period (3 s here) plus
// what a check and its report take (a short path MTU is searched for, up to
// 2 s; a peer that newly stops answering is checked again three times a
// second apart before it is reported, each try waiting out its probes), and
// the link up again once it is undone.
func TestUnderlayChecks(t *testing.T) {
	const period = 3 * time.Second
	// A blocked port is reported after about 3 × (1 s + 0.5 s of probes)
	// of confirmation, and a round; room for a loaded machine.
	const within = period + 10*time.Second
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"},
		AgentArgs: []string{"--underlay-interval", period.String()}})
	lab := c.Bed.ID()
	path := c.Ctl.Dir + "/underlay.yaml"
	if err := writeFile(path, fmt.Sprintf(`name: %s
topology:
  nodes:
    a1: {host: hostA, exec: ["ip addr add 10.6.1.1/24 dev eth1"]}
    b1: {host: hostB, exec: ["ip addr add 10.6.1.2/24 dev eth1"]}
  links:
    - endpoints: ["a1:eth1", "b1:eth1"]
`, lab)); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	hostB := c.Hosts["hostB"]
	// shows waits until link ls and host ls both hold want (the link's
	// state and cause, the host's line), and says how long that took.
	shows := func(what, linkWant, hostWant string) {
		t.Helper()
		start := time.Now()
		var links, hosts string
		ok := wait(t, within, func(context.Context) bool {
			links, _ = c.CLI(t, "link", "ls", lab)
			hosts, _ = c.CLI(t, "host", "ls")
			return strings.Contains(links, linkWant) && strings.Contains(hosts, hostWant)
		})
		if !ok {
			t.Fatalf("%s: after %v link ls lacks %q or host ls lacks %q:\n%s\n%s", what, within, linkWant, hostWant, links, hosts)
		}
		t.Logf("%s: shown after %v", what, time.Since(start).Round(10*time.Millisecond))
	}
	shows("deployed", " up ", "ok (1 peers)")
	if _, err := hostB.Exec(t.Context(), "ip", "link", "set", testbed.UnderlayIface, "mtu", "1400"); err != nil {
		t.Fatal(err)
	}
	shows("hostB's underlay MTU lowered to 1400", "path MTU 1400 below the needed 1500", "1400")
	if _, err := hostB.Exec(t.Context(), "ip", "link", "set", testbed.UnderlayIface, "mtu", "1500"); err != nil {
		t.Fatal(err)
	}
	shows("raised back to 1500", " up ", "ok (1 peers)")
	rule := []string{"INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"}
	if out, err := hostB.Exec(t.Context(), "iptables", append([]string{"-A"}, rule...)...); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	shows("UDP 4789 dropped on hostB", "VXLAN port blocked", "VXLAN on UDP port 4789 does not pass")
	// The controller says so once per host, not once per check.
	time.Sleep(2 * period)
	if n := strings.Count(c.Controller.Output(), "status=port_blocked"); n != 2 {
		t.Errorf("the controller logged the blocked port %d times over three checks, want once per host (2)", n)
	}
	if out, err := hostB.Exec(t.Context(), "iptables", append([]string{"-D"}, rule...)...); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	shows("rule removed", " up ", "ok (1 peers)")
	if !ping(t.Context(), lab, "a1", "10.6.1.2") {
		t.Error("no traffic once the underlay is whole again")
	}
}
