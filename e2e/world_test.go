package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

var netloomBin string

func TestMain(m *testing.M) {
	os.Exit(testbed.RunWithNetloom(m, &netloomBin))
}

// labFile is the suite's lab: a same-host link on hostA and a ring of
// cross-host links through the three hosts, addressed by exec. Two extra
// addresses sit on the wrong links, to prove isolation.
const labFile = `name: %s
topology:
  nodes:
    a1: {host: hostA, exec: ["ip addr add 10.0.1.1/24 dev eth1", "ip addr add 10.0.4.2/24 dev eth2", "ip addr add 10.0.3.9/24 dev eth1"]}
    a2: {host: hostA, exec: ["ip addr add 10.0.1.2/24 dev eth1", "ip addr add 10.0.2.1/24 dev eth2"]}
    b1: {host: hostB, exec: ["ip addr add 10.0.2.2/24 dev eth1", "ip addr add 10.0.3.1/24 dev eth2"]}
    c1: {host: hostC, exec: ["ip addr add 10.0.3.2/24 dev eth1", "ip addr add 10.0.4.1/24 dev eth2", "ip addr add 10.0.2.9/24 dev eth1"]}
  links:
    - endpoints: ["a1:eth1", "a2:eth1"]
    - endpoints: ["a2:eth2", "b1:eth1"]
    - endpoints: ["b1:eth2", "c1:eth1"]
    - endpoints: ["c1:eth2", "a1:eth2"]
`

// probes: every link passes traffic; the addresses put on the wrong links
// are unreachable.
var probes = []struct {
	from, to string
	want     bool
}{
	{"a1", "10.0.1.2", true}, {"a2", "10.0.2.2", true}, {"b1", "10.0.3.2", true}, {"c1", "10.0.4.2", true},
	{"a2", "10.0.2.9", false}, {"b1", "10.0.3.9", false},
}

// world is the cluster and the labs the suite runs.
type world struct {
	*testbed.Cluster
	labs []string
}

func newWorld(t *testing.T) *world {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB", "hostC"},
		ControllerArgs: []string{"--reconcile-interval", "2s", "--converge-every", "1"}})
	w := &world{Cluster: c}
	w.apply(t, c.Bed.ID(), fmt.Sprintf(labFile, c.Bed.ID()))
	return w
}

// apply applies a lab file through the CLI and records the lab.
func (w *world) apply(t *testing.T, lab, file string) {
	t.Helper()
	path := w.Ctl.Dir + "/" + lab + ".yaml"
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := w.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply %s: %v\n%s", lab, err, out)
	}
	if !slices.Contains(w.labs, lab) {
		w.labs = append(w.labs, lab)
	}
}

func (w *world) destroy(t *testing.T, lab string) {
	t.Helper()
	if out, err := w.CLI(t, "lab", "destroy", lab, "--delete"); err != nil {
		t.Fatalf("destroy %s: %v\n%s", lab, err, out)
	}
	w.labs = slices.DeleteFunc(w.labs, func(l string) bool { return l == lab })
}

func (w *world) mainLab() string { return w.labs[0] }

// ping sends one echo request and waits 200 ms for the reply: within the
// suite's simulated hosts a reply takes well under a millisecond.
func ping(ctx context.Context, lab, node, dst string) bool {
	got, err := testbed.PingWithin(ctx, ident.NamespaceName(lab, node), netip.MustParseAddr(dst), 1, 200*time.Millisecond)
	return err == nil && got == 1
}

// check runs the three checks and returns what is wrong, nil when all hold.
// views, when given, stand in for the controller (while it is down). The
// isolation probes, which wait for a reply that must not come, run only
// when isolation is set.
func (w *world) check(ctx context.Context, t *testing.T, views map[string]store.LabView, isolation bool) error {
	var problems []string
	for _, lab := range w.labs {
		for _, p := range probes {
			if lab != w.mainLab() {
				break
			}
			if !p.want && !isolation {
				continue
			}
			if got := ping(ctx, lab, p.from, p.to); got != p.want {
				problems = append(problems, fmt.Sprintf("%s: %s → %s reachable %v, want %v", lab, p.from, p.to, got, p.want))
			}
		}
	}
	bridges := map[string]map[string]portRow{}
	devices := map[string]map[string]device{}
	for name, h := range w.Hosts {
		var err error
		if bridges[name], err = readBridge(ctx, h); err != nil {
			return err
		}
		if devices[name], err = readDevices(ctx, h); err != nil {
			return err
		}
	}
	wantPorts := map[string]map[string]int{}   // host → port → tag
	wantDevs := map[string]map[string]device{} // host → device
	for _, h := range slices.Collect(maps.Keys(w.Hosts)) {
		wantPorts[h], wantDevs[h] = map[string]int{}, map[string]device{}
	}
	for _, lab := range w.labs {
		v, ok := views[lab]
		if !ok {
			if code := w.Call(t, "GET", "/api/v1/labs/"+lab, "", nil, &v); code != 200 {
				return fmt.Errorf("lab %s: status %d", lab, code)
			}
		}
		for _, ls := range v.Links {
			if ls.ActualState != "up" || ls.SourceTag == nil || ls.TargetTag == nil {
				problems = append(problems, fmt.Sprintf("%s: link %s is %s %s", lab, ls.Name, ls.ActualState, ls.Error))
				continue
			}
			wantPorts[ls.SourceHost][ident.HostPortName(lab, ls.SourceNode, ls.SourceIface)] = *ls.SourceTag
			wantPorts[ls.TargetHost][ident.HostPortName(lab, ls.TargetNode, ls.TargetIface)] = *ls.TargetTag
			if ls.CrossHost && ls.Tunnel != nil {
				tn := ls.Tunnel
				wantPorts[tn.AgentA][tn.PortName] = *ls.SourceTag
				wantPorts[tn.AgentB][tn.PortName] = *ls.TargetTag
				wantDevs[tn.AgentA][tn.PortName] = device{vni: tn.VNI, remote: tn.IPB}
				wantDevs[tn.AgentB][tn.PortName] = device{vni: tn.VNI, remote: tn.IPA}
			}
		}
		problems = append(problems, w.wantMgmt(v, wantPorts, wantDevs)...)
	}
	for host := range w.Hosts {
		for port, tag := range wantPorts[host] {
			if got, ok := bridges[host][port]; !ok || got.tag != tag {
				problems = append(problems, fmt.Sprintf("%s: port %s has tag %d (present %v), the database %d", host, port, got.tag, ok, tag))
			}
		}
		for port, row := range bridges[host] {
			if _, want := wantPorts[host][port]; row.owned && !want {
				problems = append(problems, fmt.Sprintf("%s: extra port %s", host, port))
			}
		}
		for name, d := range wantDevs[host] {
			if got := devices[host][name]; got != d {
				problems = append(problems, fmt.Sprintf("%s: device %s is %+v, the database %+v", host, name, got, d))
			}
		}
		for name := range devices[host] {
			if _, want := wantDevs[host][name]; !want {
				problems = append(problems, fmt.Sprintf("%s: extra device %s", host, name))
			}
		}
	}
	if extra := w.extraNamespaces(views); len(extra) > 0 {
		problems = append(problems, "extra namespaces: "+strings.Join(extra, ", "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// wantMgmt adds to the wanted ports and devices those of a lab's
// management network: each node's eth0, each host's own interface, and the
// tunnels between each host and the hub; segments not up are problems.
func (w *world) wantMgmt(v store.LabView, wantPorts map[string]map[string]int, wantDevs map[string]map[string]device) []string {
	var problems []string
	tags := map[string]int{}
	for _, s := range v.Mgmt {
		if s.Status != "up" {
			problems = append(problems, fmt.Sprintf("%s: management network on %s is %s %s", v.Name, s.Host, s.Status, s.Error))
			continue
		}
		tags[s.Host] = s.Tag
		wantPorts[s.Host][ident.HostPortName(v.ID, wire.HostNode, ident.MgmtIface(v.ID))] = s.Tag
	}
	for _, s := range v.Mgmt {
		_, up := tags[s.Host]
		if _, hubUp := tags[s.Hub]; s.VNI == nil || !up || !hubUp {
			continue
		}
		port := ident.PortName(v.ID, ident.MgmtLink(s.Host))
		wantPorts[s.Host][port], wantPorts[s.Hub][port] = s.Tag, tags[s.Hub]
		wantDevs[s.Host][port] = device{vni: *s.VNI, remote: w.Hosts[s.Hub].Underlay.Addr().String()}
		wantDevs[s.Hub][port] = device{vni: *s.VNI, remote: w.Hosts[s.Host].Underlay.Addr().String()}
	}
	for _, n := range v.Nodes {
		if tag, ok := tags[n.PlacedOn]; ok && n.MgmtAddress != "" {
			wantPorts[n.PlacedOn][ident.HostPortName(v.ID, n.Name, topology.MgmtIface)] = tag
		}
	}
	return problems
}

// extraNamespaces lists node namespaces of the suite's labs that no node of
// theirs owns.
func (w *world) extraNamespaces(views map[string]store.LabView) []string {
	want := map[string]bool{}
	for _, lab := range w.labs {
		if v, ok := views[lab]; ok {
			for _, n := range v.Nodes {
				want[ident.NamespaceName(lab, n.Name)] = true
			}
			continue
		}
		for _, n := range []string{"a1", "a2", "b1", "c1"} {
			want[ident.NamespaceName(lab, n)] = true
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	var extra []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ident.NamespacePrefix+w.Bed.ID()) && !want[e.Name()] {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

type portRow struct {
	tag   int
	owned bool
}

// readBridge reads a host's ports by hand with ovs-vsctl.
func readBridge(ctx context.Context, h *testbed.Host) (map[string]portRow, error) {
	out, err := h.VSCtl(ctx, "--format=csv", "--data=bare", "--no-headings", "--columns=name,tag,external_ids", "list", "Port")
	if err != nil {
		return nil, err
	}
	rows := map[string]portRow{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, ",", 3)
		if len(f) < 3 || f[0] == "netloom0" {
			continue
		}
		tag, _ := strconv.Atoi(f[1])
		rows[f[0]] = portRow{tag: tag, owned: strings.Contains(f[2], ident.OwnerKey+"="+ident.OwnerValue)}
	}
	return rows, nil
}

type device struct {
	vni    int
	remote string
}

// readDevices reads a host's VXLAN devices by hand with ip.
func readDevices(ctx context.Context, h *testbed.Host) (map[string]device, error) {
	var out string
	var err error
	for range 20 {
		if out, err = h.Exec(ctx, "ip", "-d", "-j", "link", "show", "type", "vxlan"); err != nil {
			return nil, err
		}
		if !strings.Contains(out, "Dump was interrupted") {
			break
		}
	}
	var links []struct {
		Ifname   string
		Linkinfo struct {
			InfoData struct {
				ID     int
				Remote string
			} `json:"info_data"`
		}
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("ip -j link: %w", err)
	}
	devs := map[string]device{}
	for _, l := range links {
		devs[l.Ifname] = device{vni: l.Linkinfo.InfoData.ID, remote: l.Linkinfo.InfoData.Remote}
	}
	return devs, nil
}

// prober pings across one cross-host link every 100 ms and counts losses.
type prober struct {
	sent, lost atomic.Int64
	stop       context.CancelFunc
	done       sync.WaitGroup
}

func startProber(ctx context.Context, lab, from, to string) *prober {
	p := &prober{}
	ctx, p.stop = context.WithCancel(ctx)
	p.done.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ok := ping(ctx, lab, from, to)
			if ctx.Err() != nil {
				return
			}
			p.sent.Add(1)
			if !ok {
				p.lost.Add(1)
			}
		}
	})
	return p
}

func (p *prober) finish() (sent, lost int64) {
	p.stop()
	p.done.Wait()
	return p.sent.Load(), p.lost.Load()
}

// result is one row of the reliability report.
type result struct {
	scenario  string
	recovery  time.Duration
	sent      int64
	lost      int64
	leftovers string
}

// recover waits until traffic flows on every link and the database, the
// bridges and the kernels agree with nothing extra, and returns how long
// that took; then isolation must hold too.
func (w *world) recover(t *testing.T, views map[string]store.LabView) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < 90*time.Second {
		if err = w.check(t.Context(), t, views, false); err == nil {
			took := time.Since(start)
			if err := w.check(t.Context(), t, views, true); err != nil {
				t.Fatalf("recovered in %v, but: %v", took, err)
			}
			return took
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not recovered within 90 s: %v", err)
	return 0
}
