package netns_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/vlan"
	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/testbed"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// setup builds a bed with one host and a runtime on it. The lab is named
// after the bed, so its node namespaces go with the bed whatever happens.
func setup(t *testing.T) (*testbed.Host, *netns.Runtime, string) {
	t.Helper()
	bed := testbed.Start(t)
	h, err := bed.AddHost(t.Context(), "hostA", netip.MustParsePrefix("10.77.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := netns.New(netns.Config{HostNetns: h.Netns}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return h, rt, bed.ID()
}

func spec(lab, node string, ifaces ...string) runtime.NodeSpec {
	s := runtime.NodeSpec{Lab: lab, Name: node}
	for _, i := range ifaces {
		s.Interfaces = append(s.Interfaces, runtime.InterfaceSpec{Name: i, MTU: 1450})
	}
	return s
}

// labPorts lists a lab's node ports through List.
func labPorts(t *testing.T, rt *netns.Runtime, lab string) []runtime.Port {
	t.Helper()
	nodes, err := rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ports []runtime.Port
	for _, n := range nodes {
		if n.Lab == lab {
			ports = append(ports, n.Ports...)
		}
	}
	return ports
}

func TestCreateDeleteNode(t *testing.T) {
	ctx := t.Context()
	_, rt, lab := setup(t)

	n, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1", "eth2"))
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != ident.NamespaceName(lab, "r1") || !netns.Exists(n.ID) || !n.New {
		t.Fatalf("node id %q: want existing namespace %q", n.ID, ident.NamespaceName(lab, "r1"))
	}
	if len(n.Ports) != 2 {
		t.Fatalf("ports %+v, want eth1 and eth2", n.Ports)
	}
	// The same spec again, with one more interface, completes the node.
	again, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1", "eth2", "eth3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Ports) != 3 || again.New {
		t.Fatalf("after a second CreateNode: %+v, want 3 ports", again.Ports)
	}
	for _, p := range again.Ports {
		if p.HostPort != ident.HostPortName(lab, "r1", p.Interface) || p.Ifindex == 0 {
			t.Errorf("port %+v: host port should be %s", p, ident.HostPortName(lab, "r1", p.Interface))
		}
		for _, old := range n.Ports {
			if old.Interface == p.Interface && old.Ifindex != p.Ifindex {
				t.Errorf("%s was recreated: ifindex %d → %d", p.Interface, old.Ifindex, p.Ifindex)
			}
		}
	}
	if _, err := rt.CreateNode(ctx, spec(lab, "r2", "eth1")); err != nil {
		t.Fatal(err)
	}
	ports := labPorts(t, rt, lab)
	var names []string
	for _, p := range ports {
		names = append(names, p.Node+":"+p.Interface)
	}
	slices.Sort(names)
	if want := []string{"r1:eth1", "r1:eth2", "r1:eth3", "r2:eth1"}; !slices.Equal(names, want) {
		t.Fatalf("Ports = %v, want %v", names, want)
	}
	if other := labPorts(t, rt, lab+"x"); len(other) != 0 {
		t.Fatalf("Ports of another lab = %v; want none", other)
	}

	out, err := runtimetest.Shell(ctx, rt, lab, "r1", "ip -o link show eth3 && echo inside")
	if err != nil || !strings.Contains(out, "eth3") || !strings.Contains(out, "inside") {
		t.Errorf("exec in r1: %q, %v", out, err)
	}
	if _, err := runtimetest.Shell(ctx, rt, lab, "r1", "exit 3"); err == nil {
		t.Error("a failing command reported no error")
	}
	if err := rt.DeleteNode(ctx, lab, "r1"); err != nil {
		t.Fatal(err)
	}
	if netns.Exists(n.ID) {
		t.Error("namespace of r1 still exists")
	}
	if ports = labPorts(t, rt, lab); len(ports) != 1 || ports[0].Node != "r2" {
		t.Fatalf("after delete, Ports = %+v; want r2:eth1 only", ports)
	}
	if err := rt.DeleteNode(ctx, lab, "r1"); err != nil {
		t.Errorf("deleting a deleted node: %v", err)
	}
}

// TestCreateNodeConverges makes a node match a smaller spec, and makes a
// node whose namespace was deleted by hand again, with fresh interfaces,
// even while a process keeps the old namespace and its veths alive.
func TestCreateNodeConverges(t *testing.T) {
	ctx := t.Context()
	_, rt, lab := setup(t)
	if _, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1", "eth2")); err != nil {
		t.Fatal(err)
	}
	n, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1"))
	if err != nil {
		t.Fatal(err)
	}
	if ports := labPorts(t, rt, lab); len(ports) != 1 || ports[0].Interface != "eth1" || len(n.Ports) != 1 {
		t.Fatalf("after CreateNode with eth1 only: %+v, want eth1 alone", ports)
	}
	// A process holds the namespace, which `ip netns del` then unnames.
	holder := exec.Command("ip", "netns", "exec", n.ID, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	if err := netns.Delete(n.ID); err != nil {
		t.Fatal(err)
	}
	if ports := labPorts(t, rt, lab); len(ports) != 0 {
		t.Fatalf("List shows %+v of a node whose namespace is gone", ports)
	}
	again, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.New || len(again.Ports) != 1 || again.Ports[0].Ifindex == n.Ports[0].Ifindex {
		t.Fatalf("made again: %+v, want a new node with a fresh eth1 (old ifindex %d)", again, n.Ports[0].Ifindex)
	}
	out, err := runtimetest.Shell(ctx, rt, lab, "r1", "ip -o link show eth1")
	if err != nil || !strings.Contains(out, "eth1") {
		t.Errorf("eth1 is not in the new namespace: %q, %v", out, err)
	}
	if err := rt.DeleteNode(ctx, lab, "r1"); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteNodeTakesHostEnds: a deleted node's interfaces go with its
// namespace, host ends included.
func TestDeleteNodeTakesHostEnds(t *testing.T) {
	ctx := t.Context()
	h, rt, lab := setup(t)
	n, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.DeleteNode(ctx, lab, "r1"); err != nil {
		t.Fatal(err)
	}
	host := n.Ports[0].HostPort
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.Exec(ctx, "ip", "link", "show", host); err != nil {
			break // the host end went with the namespace
		}
		if time.Now().After(deadline) {
			t.Fatalf("host end %s outlived its node", host)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCreateNodeBadInput(t *testing.T) {
	ctx := t.Context()
	_, rt, lab := setup(t)
	tests := []struct {
		name    string
		spec    runtime.NodeSpec
		wantErr []string
	}{
		{"bad names", runtime.NodeSpec{Lab: "a/b", Name: "", Interfaces: []runtime.InterfaceSpec{{Name: "lo"}}},
			[]string{`lab "a/b"`, `node ""`, `interfaces[0].name "lo"`}},
		{"duplicate and mtu", runtime.NodeSpec{Lab: lab, Name: "r1", Interfaces: []runtime.InterfaceSpec{{Name: "eth1"}, {Name: "eth1", MTU: 10}}},
			[]string{`interfaces[1].name "eth1": duplicate`, `interfaces[1].mtu 10`}},
		{"long interface", runtime.NodeSpec{Lab: lab, Name: "r1", Interfaces: []runtime.InterfaceSpec{{Name: "ethernet-1-1-1-1"}}},
			[]string{`interfaces[0].name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rt.CreateNode(ctx, tt.spec)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	if netns.Exists(ident.NamespaceName(lab, "r1")) {
		t.Error("bad input left a namespace")
	}
}

// TestRollback makes the second interface fail and checks that the node
// does not stay half-built.
func TestRollback(t *testing.T) {
	ctx := t.Context()
	h, rt, lab := setup(t)
	// Take the host port name the second interface needs.
	clash := ident.HostPortName(lab, "r1", "eth2")
	if _, err := h.Exec(ctx, "ip", "link", "add", clash, "type", "veth", "peer", "name", "x"+clash[:10]); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.CreateNode(ctx, spec(lab, "r1", "eth1", "eth2")); err == nil {
		t.Fatal("CreateNode succeeded over a foreign host port")
	}
	if netns.Exists(ident.NamespaceName(lab, "r1")) {
		t.Error("failed CreateNode left its namespace")
	}
	if ports := labPorts(t, rt, lab); len(ports) != 0 {
		t.Errorf("failed CreateNode left ports %+v", ports)
	}
}

// TestNodesOnBridge attaches node ports to the bridge with tags from the
// allocator and checks that nodes on one tag talk and nodes on different
// tags do not.
func TestNodesOnBridge(t *testing.T) {
	ctx := t.Context()
	h, rt, lab := setup(t)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := ovs.New(dctx, ovs.Config{OVSDB: h.OVSDB(), Bridge: "netloom0", Netns: h.Netns}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	obs, err := d.Observe(dctx)
	if err != nil {
		t.Fatal(err)
	}
	var seed []int
	for _, p := range obs.Ports {
		seed = append(seed, p.Tag)
	}
	tags := vlan.New(seed)
	linked, err := tags.Allocate(vlan.Linked)
	if err != nil {
		t.Fatal(err)
	}
	isolated, err := tags.Allocate(vlan.Isolated)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []struct {
		name string
		addr string
		tag  int
	}{
		{"n1", "192.168.70.1/24", linked},
		{"n2", "192.168.70.2/24", linked},
		{"n3", "192.168.70.3/24", isolated},
	}
	var plan fabric.Plan
	for _, n := range nodes {
		node, err := rt.CreateNode(ctx, spec(lab, n.name, "eth1"))
		if err != nil {
			t.Fatal(err)
		}
		p := node.Ports[0]
		plan.AddPorts = append(plan.AddPorts, fabric.Port{Name: p.HostPort, Tag: n.tag, MTU: 1450,
			Owner: fabric.Owner{Lab: lab, Node: n.name, Iface: p.Interface}})
		if _, err := testbed.ExecIn(ctx, node.ID, "ip", "addr", "add", n.addr, "dev", "eth1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Apply(dctx, plan); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from, to string
		want     int
	}{
		{"n1", "192.168.70.2", 3},
		{"n2", "192.168.70.1", 3},
		{"n3", "192.168.70.1", 0},
		{"n1", "192.168.70.3", 0},
	}
	for _, tt := range tests {
		t.Run(tt.from+"→"+tt.to, func(t *testing.T) {
			got, err := testbed.PingFrom(ctx, ident.NamespaceName(lab, tt.from), netip.MustParseAddr(tt.to), 3)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%d/3 replies, want %d", got, tt.want)
			}
		})
	}
	// Both runtimes' views agree: the ports the bridge holds are the node
	// ports the runtime reports, marked as the nodes'.
	obs, err = d.Observe(dctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plan.AddPorts {
		got := obs.Ports[p.Name]
		if got.Tag != p.Tag || got.Owner != p.Owner || got.LinkState != "up" {
			t.Errorf("bridge port %s = %+v, want tag %d owner %+v up", p.Name, got, p.Tag, p.Owner)
		}
	}
}

// TestConformance runs the runtime seam's contract against netns.
func TestConformance(t *testing.T) {
	runtimetest.RunConformance(t, func(t *testing.T) runtimetest.Harness {
		_, rt, lab := setup(t)
		// Whatever a failed test left running in its nodes ends before the
		// bed goes.
		t.Cleanup(func() {
			names, _ := netns.List()
			for _, ns := range names {
				if strings.HasPrefix(ns, ident.NamespacePrefix+lab+"-") {
					_, _ = netns.EndProcesses(ns, 0)
				}
			}
		})
		return runtimetest.Harness{Runtime: rt, Lab: lab, Alive: func(_, pid string) bool {
			n, err := strconv.Atoi(pid)
			return err == nil && netns.ProcessRunning(n)
		}}
	})
}

// addrsOf lists the addresses of dev in namespace ns, but IPv6 link-local
// ones, sorted.
func addrsOf(t *testing.T, ns, dev string) []string {
	t.Helper()
	out, err := testbed.ExecIn(t.Context(), ns, "ip", "-o", "addr", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if (f[i] == "inet" || f[i] == "inet6") && !strings.HasPrefix(f[i+1], "fe80:") {
				got = append(got, f[i+1])
			}
		}
	}
	slices.Sort(got)
	return got
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestWireAddresses: a node interface holds exactly the addresses it
// declares, through every change; one that declares none keeps what was
// added by hand.
func TestWireAddresses(t *testing.T) {
	ctx := t.Context()
	_, rt, lab := setup(t)
	ns := ident.NamespaceName(lab, "r1")
	steps := []struct {
		name   string
		eth1   []string // declared
		byHand string   // added to eth1 before the step, "" for none
		want   []string
	}{
		{"made with two", []string{"10.98.0.1/24", "2001:db8::1/64"}, "", []string{"10.98.0.1/24", "2001:db8::1/64"}},
		{"changed", []string{"10.98.0.2/24"}, "", []string{"10.98.0.2/24"}},
		{"one added by hand goes", []string{"10.98.0.2/24"}, "10.98.9.9/16", []string{"10.98.0.2/24"}},
		{"another length", []string{"10.98.0.2/16"}, "", []string{"10.98.0.2/16"}},
		{"none declared keeps what is there", nil, "10.98.7.7/24", []string{"10.98.0.2/16", "10.98.7.7/24"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.byHand != "" {
				if _, err := testbed.ExecIn(ctx, ns, "ip", "addr", "add", st.byHand, "dev", "eth1"); err != nil {
					t.Fatal(err)
				}
			}
			s := spec(lab, "r1", "eth1")
			s.Interfaces[0].Addresses = prefixes(st.eth1...)
			if _, err := rt.CreateNode(ctx, s); err != nil {
				t.Fatal(err)
			}
			if got := addrsOf(t, ns, "eth1"); !slices.Equal(got, st.want) {
				t.Errorf("eth1 holds %v, want %v", got, st.want)
			}
		})
	}
	if got, err := testbed.PingFrom(ctx, ns, netip.MustParseAddr("10.98.0.2"), 1); err != nil || got != 1 {
		t.Errorf("r1 does not answer its own address: %d, %v", got, err)
	}
	if err := rt.DeleteNode(ctx, lab, "r1"); err != nil {
		t.Fatal(err)
	}
}

// hostSpec is the pseudo-node host of lab with interfaces named iface or
// iface=address.
func hostSpec(lab string, ifaces ...string) runtime.NodeSpec {
	s := runtime.NodeSpec{Lab: lab, Name: runtime.HostNode}
	for _, i := range ifaces {
		name, addr, _ := strings.Cut(i, "=")
		ifc := runtime.InterfaceSpec{Name: name, MTU: 1450}
		if addr != "" {
			ifc.Addresses = prefixes(addr)
		}
		s.Interfaces = append(s.Interfaces, ifc)
	}
	return s
}

// TestHostNode makes, completes, shrinks and deletes host pseudo-nodes of
// two labs in a host's namespace, next to interfaces that are not
// netloom's.
func TestHostNode(t *testing.T) {
	ctx := t.Context()
	h, plain, lab := setup(t)
	rt, err := netns.NewHost(netns.Config{HostNetns: h.Netns}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	list := func(t *testing.T) map[string][]string {
		t.Helper()
		nodes, err := rt.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, n := range nodes {
			for _, p := range n.Ports {
				if p.Down || p.MTU != 1450 || p.HostPort != ident.HostPortName(n.Lab, n.Name, p.Interface) {
					t.Errorf("port %+v: want up, MTU 1450, named by ident", p)
				}
				out[n.Lab] = append(out[n.Lab], n.Name+":"+p.Interface)
			}
			slices.Sort(out[n.Lab])
		}
		return out
	}
	exists := func(name string) bool {
		_, err := h.Exec(ctx, "ip", "link", "show", name)
		return err == nil
	}

	n, err := rt.CreateNode(ctx, hostSpec(lab, "veth1=10.97.0.1/24", "veth2"))
	if err != nil {
		t.Fatal(err)
	}
	if !n.New || len(n.Ports) != 2 {
		t.Fatalf("made %+v: want a new node with 2 ports", n)
	}
	if got := addrsOf(t, h.Netns, "veth1"); !slices.Equal(got, []string{"10.97.0.1/24"}) {
		t.Errorf("veth1 holds %v, want 10.97.0.1/24", got)
	}
	if ports := labPorts(t, plain, lab); len(ports) != 0 {
		t.Errorf("the netns runtime lists %+v: the host's interfaces are no namespace's", ports)
	}
	out, err := h.Exec(ctx, "ip", "-d", "link", "show", ident.HostPortName(lab, runtime.HostNode, "veth1"))
	if err != nil || !strings.Contains(out, "alias netloom/"+lab+"/host/veth1") {
		t.Errorf("host port of veth1: %q, %v: want netloom's alias", out, err)
	}
	again, err := rt.CreateNode(ctx, hostSpec(lab, "veth1=10.97.0.1/24", "veth2"))
	if err != nil || again.New || again.Ports[0].Ifindex != n.Ports[0].Ifindex {
		t.Fatalf("the same spec again: %+v, %v: want the node found as it was", again, err)
	}
	if _, err := rt.CreateNode(ctx, hostSpec(lab, "veth1=10.97.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if exists("veth2") || exists(ident.HostPortName(lab, runtime.HostNode, "veth2")) {
		t.Error("veth2, dropped from the spec, is still there")
	}
	if got := list(t); !slices.Equal(got[lab], []string{"host:veth1"}) || len(got) != 1 {
		t.Errorf("List %v, want %s's host:veth1 alone", got, lab)
	}

	clashes := []struct {
		name, iface string
		make        []string // ip link add …; none for what the bed made
	}{
		{"a bridge", "fx1", []string{"type", "bridge"}},
		{"a foreign veth", "fx2", []string{"type", "veth", "peer", "name", "fx2p"}},
		{"the underlay, a veth into another namespace", testbed.UnderlayIface, nil},
	}
	for _, c := range clashes {
		t.Run(c.name, func(t *testing.T) {
			if c.make != nil {
				if _, err := h.Exec(ctx, "ip", append([]string{"link", "add", c.iface}, c.make...)...); err != nil {
					t.Fatal(err)
				}
			}
			_, err := rt.CreateNode(ctx, hostSpec(lab, "veth1=10.97.0.1/24", c.iface))
			if err == nil || !strings.Contains(err.Error(), c.iface+" exists in the host's namespace and is not netloom's") {
				t.Errorf("a clash with %s: %v, want an error naming it", c.iface, err)
			}
			if !exists(c.iface) || !exists("veth1") {
				t.Errorf("after the clash: %s there %v, veth1 there %v; want both", c.iface, exists(c.iface), exists("veth1"))
			}
		})
	}

	other := lab + "x"
	if _, err := rt.CreateNode(ctx, hostSpec(other, "veth9=10.97.9.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := rt.DeleteNode(ctx, lab, runtime.HostNode); err != nil {
		t.Fatal(err)
	}
	if exists("veth1") || exists(ident.HostPortName(lab, runtime.HostNode, "veth1")) || !exists("veth9") || !exists("fx1") || !exists("fx2") {
		t.Errorf("after deleting %s's host: veth1 %v, veth9 %v, fx1 %v, fx2 %v; want veth9, fx1 and fx2 alone",
			lab, exists("veth1"), exists("veth9"), exists("fx1"), exists("fx2"))
	}
	if got := list(t); len(got) != 1 || !slices.Equal(got[other], []string{"host:veth9"}) {
		t.Errorf("List %v, want %s's host:veth9 alone", got, other)
	}
	if err := rt.DeleteNode(ctx, lab, runtime.HostNode); err != nil {
		t.Errorf("deleting a deleted host node: %v", err)
	}
	if _, err := runtimetest.Shell(ctx, rt, other, runtime.HostNode, "true"); err == nil || !strings.Contains(err.Error(), "run the command on the host") {
		t.Errorf("exec in host: %v", err)
	}
	if err := rt.DeleteNode(ctx, other, runtime.HostNode); err != nil || exists("veth9") {
		t.Errorf("delete %s's host: %v, veth9 there %v", other, err, exists("veth9"))
	}
}

// TestOnlyMarkedNamespacesAreNodes puts a namespace at a node's name that
// is not marked as that node's on this host: it is not adopted (an error
// names it), not listed and not deleted. One marked as the node's by
// another host that shares /run/netns is not this host's to delete either.
// A node without interfaces is listed through its mark.
func TestOnlyMarkedNamespacesAreNodes(t *testing.T) {
	ctx := t.Context()
	_, rt, lab := setup(t)
	tests := []struct {
		name, node string
		mark       string // "" for none
		deleteErrs bool
	}{
		{name: "unmarked", node: "n0", deleteErrs: true},
		{name: "another node's", node: "n1", mark: "netloom/" + lab + "/other", deleteErrs: true},
		{name: "not netloom's", node: "n2", mark: "someone's lo", deleteErrs: true},
		{name: "another host's", node: "n3", mark: "netloom/" + lab + "/n3@some-other-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, ns := tt.node, ident.NamespaceName(lab, tt.node)
			if err := netns.CreateMarked(ns, tt.mark); err != nil {
				t.Fatal(err)
			}
			if _, err := rt.CreateNode(ctx, spec(lab, node, "eth1")); err == nil || !strings.Contains(err.Error(), ns) {
				t.Errorf("CreateNode over %s: %v, want an error naming it", ns, err)
			}
			err := rt.DeleteNode(ctx, lab, node)
			if (err != nil) != tt.deleteErrs || err != nil && !strings.Contains(err.Error(), ns) {
				t.Errorf("DeleteNode: %v, want an error naming %s: %v", err, ns, tt.deleteErrs)
			}
			if !netns.Exists(ns) {
				t.Fatalf("%s was deleted", ns)
			}
			if out, err := runtimetest.Shell(ctx, rt, lab, node, "true"); err == nil {
				t.Errorf("exec in %s: %q, want an error", ns, out)
			}
			nodes, err := rt.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if n.ID == ns {
					t.Errorf("List reports %+v", n)
				}
			}
			if err := netns.Delete(ns); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("a namespace made after the node's deletion is not the node", func(t *testing.T) {
		// The kernel gives a new namespace a freed one's inode number, by
		// which the runtime keeps marks: it must forget the mark of a
		// namespace it deletes, or take a newcomer under the same name for
		// the node.
		ns := ident.NamespaceName(lab, "sq")
		if _, err := rt.CreateNode(ctx, spec(lab, "sq", "eth1")); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.List(ctx); err != nil {
			t.Fatal(err)
		}
		if !rt.KeepsMark(ns) {
			t.Fatalf("List kept no mark of %s", ns)
		}
		if err := rt.DeleteNode(ctx, lab, "sq"); err != nil {
			t.Fatal(err)
		}
		if rt.KeepsMark(ns) {
			t.Errorf("the mark of the deleted %s is kept", ns)
		}
		if err := netns.CreateMarked(ns, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netns.Delete(ns) })
		if _, err := rt.CreateNode(ctx, spec(lab, "sq", "eth1")); err == nil || !strings.Contains(err.Error(), ns) {
			t.Errorf("CreateNode over an unmarked %s: %v, want an error naming it", ns, err)
		}
	})
	t.Run("a node without interfaces is listed", func(t *testing.T) {
		if _, err := rt.CreateNode(ctx, spec(lab, "bare")); err != nil {
			t.Fatal(err)
		}
		nodes, err := rt.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(nodes, func(n runtime.Node) bool { return n.Lab == lab && n.Name == "bare" && len(n.Ports) == 0 }) {
			t.Errorf("List = %+v, want %s/bare without ports", nodes, lab)
		}
		if err := rt.DeleteNode(ctx, lab, "bare"); err != nil || netns.Exists(ident.NamespaceName(lab, "bare")) {
			t.Errorf("DeleteNode of a node without interfaces: %v", err)
		}
	})
}

// TestFullChecksums makes nodes with and without FullChecksums, in a
// namespace of their own and as the host pseudo-node: the option turns tx
// checksum offload off on every node end, those a call makes and those it
// finds, and without it the kernel's default (on) stays.
func TestFullChecksums(t *testing.T) {
	ctx := t.Context()
	h, plain, lab := setup(t)
	host, err := netns.NewHost(netns.Config{HostNetns: h.Netns}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	runtimes := []struct {
		name string
		rt   runtime.Runtime
		node string
		// ns names the namespace of a lab's node ends.
		ns func(lab string) string
	}{
		{"netns", plain, "r1", func(lab string) string { return ident.NamespaceName(lab, "r1") }},
		{"host", host, runtime.HostNode, func(string) string { return h.Netns }},
	}
	tests := []struct {
		name string
		// steps is FullChecksums of each CreateNode in turn; step k
		// declares k+1 interfaces, so a later step finds the earlier ones.
		steps []bool
	}{
		{"without", []bool{false}},
		{"new node with", []bool{true}},
		{"existing node rewired with", []bool{false, true}},
		{"with twice", []bool{true, true}},
	}
	for _, r := range runtimes {
		t.Run(r.name, func(t *testing.T) {
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// A lab per case: the host pseudo-node is one per lab,
					// and its ends share the host's namespace.
					caseLab := "f" + strconv.Itoa(i) + lab // swept with the bed: named after it
					for k, full := range tt.steps {
						s := runtime.NodeSpec{Lab: caseLab, Name: r.node, FullChecksums: full}
						for j := range k + 1 {
							name := "fc" + strconv.Itoa(i) + "e" + strconv.Itoa(j)
							s.Interfaces = append(s.Interfaces, runtime.InterfaceSpec{Name: name, MTU: 1450})
						}
						if _, err := r.rt.CreateNode(ctx, s); err != nil {
							t.Fatalf("step %d: %v", k, err)
						}
						for _, ifc := range s.Interfaces {
							on, err := netns.TxChecksumOn(r.ns(caseLab), ifc.Name)
							if err != nil {
								t.Fatal(err)
							}
							if on == full {
								t.Errorf("step %d (FullChecksums %v): %s has tx checksum offload on=%v", k, full, ifc.Name, on)
							}
						}
					}
				})
			}
		})
	}
}
