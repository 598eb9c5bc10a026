package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netloom/netloom/internal/ident"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// crashEnv makes the test binary build a bed and exit without closing it, as
// a crashed run would.
const crashEnv = "NETLOOM_TESTBED_CRASH"

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) == "1" {
		os.Exit(crashedRun())
	}
	os.Exit(m.Run())
}

// crashedRun builds a bed with one running host and exits without cleanup,
// printing the bed's id and folder.
func crashedRun() int {
	ctx := context.Background()
	b, err := New(ctx, Config{Name: "crashed"})
	if err == nil {
		_, err = b.AddHost(ctx, "hostC", netip.MustParsePrefix("10.77.0.9/24"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if b != nil {
			b.Close()
		}
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{"id": b.ID(), "dir": b.Dir()})
	return 0
}

var (
	underA = netip.MustParsePrefix("10.77.0.1/24")
	underB = netip.MustParsePrefix("10.77.0.2/24")
)

// TestTwoHosts builds two hosts joined by one kernel VXLAN device each, added
// to each host's OVS bridge as a tagged system port, and proves that packets
// cross between hosts and stay apart across tags.
func TestTwoHosts(t *testing.T) {
	ctx := t.Context()
	bed := Start(t)
	hostA, err := bed.AddHost(ctx, "hostA", underA)
	if err != nil {
		t.Fatal(err)
	}
	hostB, err := bed.AddHost(ctx, "hostB", underB)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := hostA.Ping(ctx, underB.Addr(), 2); err != nil || got != 2 {
		t.Fatalf("underlay ping hostA→hostB: %d/2 replies, err %v", got, err)
	}

	type nodeSpec struct {
		host    *Host
		name    string
		addr    string
		hostEnd string
	}
	specs := []nodeSpec{
		{hostA, "n1", "192.168.60.1/24", "a-n1"}, // tag 10, linked to n2
		{hostA, "n3", "192.168.60.3/24", "a-n3"}, // tag 11
		{hostA, "n4", "192.168.60.4/24", "a-n4"}, // tag 11
		{hostB, "n2", "192.168.60.2/24", "b-n2"}, // tag 20, linked to n1
	}
	nodes := map[string]*Node{}
	addrs := map[string]netip.Addr{}
	for _, s := range specs {
		n, err := s.host.AddNode(ctx, s.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.AddInterface(ctx, "eth1", s.hostEnd, netip.MustParsePrefix(s.addr), 1450); err != nil {
			t.Fatal(err)
		}
		nodes[s.name] = n
		addrs[s.name] = netip.MustParsePrefix(s.addr).Addr()
	}
	// One VNI, and tags that differ on the two sides: a link's tags are local.
	for _, side := range []struct {
		h             *Host
		local, remote netip.Prefix
		ports         []string
	}{
		{hostA, underA, underB, []string{"a-n1", "tag=10", "a-n3", "tag=11", "a-n4", "tag=11", "vx5010", "tag=10"}},
		{hostB, underB, underA, []string{"b-n2", "tag=20", "vx5010", "tag=20"}},
	} {
		if _, err := side.h.Exec(ctx, "ip", "link", "add", "vx5010", "mtu", "1450", "type", "vxlan", "id", "5010",
			"local", side.local.Addr().String(), "remote", side.remote.Addr().String(), "dstport", "4789", "nolearning"); err != nil {
			t.Fatal(err)
		}
		if _, err := side.h.Exec(ctx, "ip", "link", "set", "vx5010", "up"); err != nil {
			t.Fatal(err)
		}
		args := []string{"add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"}
		for i := 0; i < len(side.ports); i += 2 {
			args = append(args, "--", "add-port", "br0", side.ports[i], side.ports[i+1])
		}
		if _, err := side.h.VSCtl(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name     string
		from, to string
		want     int
	}{
		{"cross-host over vxlan", "n1", "n2", 3},
		{"cross-host reverse", "n2", "n1", 3},
		{"same host same tag", "n3", "n4", 3},
		{"same host different tag", "n3", "n1", 0},
		{"different tag to remote", "n4", "n2", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nodes[tt.from].Ping(ctx, addrs[tt.to], 3)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ping %s→%s (%s): %d/3 replies, want %d", tt.from, tt.to, addrs[tt.to], got, tt.want)
			}
		})
	}
}

// TestUnderlayOnOVS builds two hosts whose underlay sits on PhysBridge and
// checks, as built and after each kind of OVS restart, that they reach
// each other, that ovs-vswitchd routes the underlay out of the bridge, and
// that userspace TSO stays off.
func TestUnderlayOnOVS(t *testing.T) {
	ctx := t.Context()
	bed := Start(t)
	var hosts []*Host
	for _, h := range []struct {
		name string
		addr netip.Prefix
	}{{"hostA", underA}, {"hostB", underB}} {
		host, err := bed.AddHostWith(ctx, h.name, h.addr, HostOptions{UnderlayOnOVS: true})
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, host)
	}
	check := func(t *testing.T) {
		t.Helper()
		for i, h := range hosts {
			peer := hosts[1-i].Underlay.Addr()
			if got, err := h.Ping(ctx, peer, 2); err != nil || got != 2 {
				t.Errorf("underlay ping %s→%s: %d/2 replies, err %v", h.Name, peer, got, err)
			}
			out, err := h.Exec(ctx, "ip", "-4", "-o", "addr", "show")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, PhysBridge+"    inet "+h.Underlay.String()) || strings.Contains(out, UnderlayIface+"    inet") {
				t.Errorf("%s addresses:\n%s\nwant %s on %s alone", h.Name, out, h.Underlay, PhysBridge)
			}
			// ovs-vswitchd learns routes from netlink as they come.
			want := fmt.Sprintf("10.77.0.0/24 dev %s SRC %s", PhysBridge, h.Underlay.Addr())
			err = wait(ctx, 5*time.Second, "ovs-vswitchd's route", func() (bool, error) {
				out, err = h.Exec(ctx, "ovs-appctl", "-t", h.path("ovs-vswitchd.ctl"), "ovs/route/show")
				return err == nil && strings.Contains(out, want), err
			})
			if err != nil {
				t.Errorf("%s: ovs/route/show:\n%s\nwant %q: %v", h.Name, out, want, err)
			}
			if out, err := h.VSCtl(ctx, "get", "Open_vSwitch", ".", "other_config"); err != nil || strings.Contains(out, "userspace-tso-enable") {
				t.Errorf("%s other_config %q, %v: want no userspace-tso-enable", h.Name, out, err)
			}
		}
	}
	steps := []struct {
		name    string
		restart func(h *Host) error
	}{
		{"as built", nil},
		{"after an OVS restart", func(h *Host) error { return h.RestartOVS(ctx, false) }},
		{"after an OVS restart on an empty database", func(h *Host) error { return h.RestartOVS(ctx, true) }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.restart != nil {
				for _, h := range hosts {
					if err := st.restart(h); err != nil {
						t.Fatal(err)
					}
				}
			}
			check(t)
		})
	}
}

// rootLinks returns the names of the links in the test's own network
// namespace.
func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// TestCloseLeavesNothing builds a bed, breaks part of it on purpose, closes
// it and checks that no namespace, link, process or file remains.
func TestCloseLeavesNothing(t *testing.T) {
	skipShort(t)
	ctx := t.Context()
	before := rootLinks(t)
	bed, err := New(ctx, Config{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := bed.AddHost(ctx, "hostA", underA)
	if err != nil {
		bed.Close()
		t.Fatal(err)
	}
	n, err := h.AddNode(ctx, "n1")
	if err == nil {
		err = n.AddInterface(ctx, "eth1", "a-n1", netip.MustParsePrefix("192.168.60.1/24"), 0)
	}
	if err != nil {
		bed.Close()
		t.Fatal(err)
	}
	// Failures half-way must leave nothing Close cannot remove.
	if err := n.AddInterface(ctx, "eth2", "a-n1", netip.Prefix{}, 0); err == nil {
		t.Error("a second veth named a-n1 was accepted")
	}
	if _, err := bed.AddHost(ctx, "hostA", underB); err == nil {
		t.Error("a second host named hostA was accepted")
	}
	pids, err := bedProcesses(bed.Dir())
	if err != nil || len(pids) != 2 {
		t.Errorf("running daemons of the bed: %v (err %v), want ovsdb-server and ovs-vswitchd", pids, err)
	}
	made := bed.Namespaces()
	if len(made) != 3 {
		t.Errorf("namespaces %v, want underlay, hostA and n1", made)
	}
	// Code under test names its namespaces after the bed's, as an agent's
	// underlay probe namespace is named after its host's.
	if err := nlns.Create(h.Netns + "-underlay"); err != nil {
		t.Error(err)
	}

	if err := bed.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if left, err := bed.Residue(); err != nil || len(left) > 0 {
		t.Errorf("left behind: %v (err %v)", left, err)
	}
	for _, pid := range pids {
		if nlns.ProcessRunning(pid) {
			t.Errorf("daemon %d still runs", pid)
		}
	}
	if after := rootLinks(t); !slices.Equal(before, after) {
		t.Errorf("root netns links changed: before %v, after %v", before, after)
	}
	if err := bed.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestSweepCrashedRun runs a process that builds a bed and exits without
// cleanup, then checks that the next bed sweeps all of it away.
func TestSweepCrashedRun(t *testing.T) {
	skipShort(t)
	ctx := t.Context()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), crashEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crashed run: %v", err)
	}
	var crashed struct{ ID, Dir string }
	if err := json.Unmarshal(out, &crashed); err != nil {
		t.Fatalf("crashed run output %q: %v", out, err)
	}
	left, err := residue(crashed.ID, crashed.Dir)
	if err != nil {
		t.Fatal(err)
	}
	// underlay + host namespaces, two daemons, the folder
	if len(left) != 5 {
		t.Fatalf("the crashed run should have left 2 namespaces, 2 daemons and a folder, found %v", left)
	}
	Start(t) // sweeps
	if left, err := residue(crashed.ID, crashed.Dir); err != nil || len(left) > 0 {
		t.Errorf("after sweep, left behind: %v (err %v)", left, err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := t.Context()
	bed := Start(t)
	tests := []struct {
		name    string
		host    string
		addr    netip.Prefix
		wantErr string
	}{
		{"long host name", "hostname-too-long", underA, "host name"},
		{"shell characters", "a;rm", underA, "host name"},
		{"no address", "hostA", netip.Prefix{}, "underlay address"},
		{"ipv6 address", "hostA", netip.MustParsePrefix("fd00::1/64"), "underlay address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bed.AddHost(ctx, tt.host, tt.addr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("AddHost(%q, %v) = %v, want an error about %s", tt.host, tt.addr, err, tt.wantErr)
			}
		})
	}
	if got := len(bed.Namespaces()); got != 1 {
		t.Errorf("bad input created namespaces: %v", bed.Namespaces())
	}
}

// TestPauseResume pauses a process a test started and checks that none of
// its threads runs until it is resumed.
func TestPauseResume(t *testing.T) {
	ctx := t.Context()
	bed := Start(t)
	m, err := bed.AddMachine(ctx, "m", underA)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Start(ctx, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	defer p.Resume()
	if stopped, err := threadsStopped(p.PID()); err != nil || !stopped {
		t.Fatalf("after Pause: stopped %v (err %v)", stopped, err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stopped, err := threadsStopped(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		if !stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still stopped 5 s after Resume")
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Errorf("Resume of an ended process: %v", err)
	}
	if err := p.Pause(); err == nil {
		t.Error("Pause of an ended process succeeded")
	}
}

func TestBedOf(t *testing.T) {
	t.Parallel()
	for ns, want := range map[string]string{
		"nlt0a1b2c-hostA":                       "nlt0a1b2c",
		ident.NamespaceName("nlt0a1b2c", "r1"):  "nlt0a1b2c",
		ident.NamespaceName("mnlt0a1b2c", "m2"): "nlt0a1b2c",
		ident.NamespaceName("nlt0a1b2c", "a-b"): "nlt0a1b2c",
		ident.NamespaceName("demo", "r1"):       "",
		ident.NamespaceName("xnlt0a1b2z", "r1"): "",
		"nlt0a1b2c":                             "",
		"something-else-entir":                  "",
	} {
		id, ok := bedOf(ns)
		if ok != (want != "") || ok && id != want {
			t.Errorf("bedOf(%q) = %q, %v; want %q", ns, id, ok, want)
		}
	}
}
