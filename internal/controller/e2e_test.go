package controller_test

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

var netloomBin string

func TestMain(m *testing.M) {
	os.Exit(testbed.RunWithNetloom(m, &netloomBin))
}

// cluster is a testbed cluster with the lab its test uses, named after the
// bed so its node namespaces go with it.
type cluster struct {
	*testbed.Cluster
	lab string
}

func newCluster(t *testing.T, backend string) *cluster {
	t.Helper()
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}, Postgres: backend == "postgres"})
	return &cluster{Cluster: c, lab: c.Bed.ID()}
}

func (c *cluster) labView(t *testing.T) store.LabView {
	t.Helper()
	var v store.LabView
	if code := c.Call(t, "GET", "/api/v1/labs/"+c.lab, "", nil, &v); code != 200 {
		t.Fatalf("get lab: %d", code)
	}
	return v
}

func (c *cluster) ping(t *testing.T, node, dst string) int {
	t.Helper()
	got, err := testbed.PingFrom(t.Context(), ident.NamespaceName(c.lab, node), netip.MustParseAddr(dst), 3)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (c *cluster) addr(t *testing.T, node, iface, prefix string) {
	t.Helper()
	if _, err := testbed.ExecIn(t.Context(), ident.NamespaceName(c.lab, node), "ip", "addr", "add", prefix, "dev", iface); err != nil {
		t.Fatal(err)
	}
}

// bridgePorts reads a host's bridge by hand: port → tag.
func bridgePorts(t *testing.T, h *testbed.Host) map[string]int {
	t.Helper()
	out, err := h.VSCtl(t.Context(), "--format=csv", "--data=bare", "--no-headings", "--columns=name,tag", "list", "Port")
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, tag, ok := strings.Cut(line, ","); ok && name != "netloom0" {
			tags[name], _ = strconv.Atoi(tag)
		}
	}
	return tags
}

// vxlanVNIs reads a host's VXLAN devices by hand: name → VNI.
func vxlanVNIs(t *testing.T, h *testbed.Host) map[string]int {
	t.Helper()
	out, err := h.Exec(t.Context(), "ip", "-d", "-j", "link", "show", "type", "vxlan")
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Ifname   string
		Linkinfo struct {
			InfoData struct{ ID int } `json:"info_data"`
		}
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("ip -j: %v: %s", err, out)
	}
	vnis := map[string]int{}
	for _, l := range links {
		vnis[l.Ifname] = l.Linkinfo.InfoData.ID
	}
	return vnis
}

const labYAML = `name: %s
topology:
  nodes:
    r1: {host: hostA}
    r2: {host: hostA}
    r3: {host: hostB}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
    - endpoints: ["r2:eth2", "r3:eth1"]
`

// TestDeploy deploys a lab of 3 nodes on 2 hosts through the controller, on
// each database, proves traffic and isolation, checks the database against
// the bridges, destroys it, and deploys it again with one agent down.
func TestDeploy(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, backend)
			var created store.LabView
			if code := c.Call(t, "POST", "/api/v1/labs", "application/yaml", fmt.Appendf(nil, labYAML, c.lab), &created); code != 201 {
				t.Fatalf("create lab: %d", code)
			}
			var bad map[string]any
			if code := c.Call(t, "POST", "/api/v1/labs", "application/yaml", []byte("name: x\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [r1:eth1, r9:eth1]\n"), &bad); code != 400 || !strings.Contains(fmt.Sprint(bad["error"]), "lab.yaml:5:") {
				t.Errorf("bad lab file: %d %v, want 400 with the file position", code, bad)
			}

			var dep wire.DeployResponse
			if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/deploy", "", nil, &dep); code != 200 || dep.State != "running" {
				t.Fatalf("deploy: %d %+v", code, dep)
			}
			c.addr(t, "r1", "eth1", "192.168.90.1/24")
			c.addr(t, "r2", "eth1", "192.168.90.2/24")
			c.addr(t, "r2", "eth2", "192.168.91.2/24")
			c.addr(t, "r3", "eth1", "192.168.91.3/24")
			c.addr(t, "r3", "eth1", "192.168.90.3/24") // on the cross-host link, not r1's
			t.Run("packets cross", func(t *testing.T) {
				for _, tt := range []struct {
					from, to string
					want     int
				}{{"r1", "192.168.90.2", 3}, {"r2", "192.168.91.3", 3}, {"r3", "192.168.91.2", 3}, {"r1", "192.168.90.3", 0}} {
					if got := c.ping(t, tt.from, tt.to); got != tt.want {
						t.Errorf("%s → %s: %d/3, want %d", tt.from, tt.to, got, tt.want)
					}
				}
			})

			t.Run("database matches the bridges", func(t *testing.T) {
				v := c.labView(t)
				ports := map[string]map[string]int{"hostA": bridgePorts(t, c.Hosts["hostA"]), "hostB": bridgePorts(t, c.Hosts["hostB"])}
				for _, ls := range v.Links {
					if ls.ActualState != "up" || ls.SourceTag == nil || ls.TargetTag == nil {
						t.Fatalf("link %+v", ls)
					}
					src := ports[ls.SourceHost][ident.HostPortName(c.lab, ls.SourceNode, ls.SourceIface)]
					dst := ports[ls.TargetHost][ident.HostPortName(c.lab, ls.TargetNode, ls.TargetIface)]
					if src != *ls.SourceTag || dst != *ls.TargetTag {
						t.Errorf("link %s: bridges hold tags %d/%d, database %d/%d", ls.Name, src, dst, *ls.SourceTag, *ls.TargetTag)
					}
					if !ls.CrossHost {
						continue
					}
					tun := ls.Tunnel
					if tun == nil || tun.PortName != ident.PortName(c.lab, ls.Name) || tun.IPA != "10.77.0.1" || tun.IPB != "10.77.0.2" || tun.VNI != *ls.VNI {
						t.Fatalf("tunnel row %+v of %+v", tun, ls)
					}
					for host, tag := range map[string]int{ls.SourceHost: *ls.SourceTag, ls.TargetHost: *ls.TargetTag} {
						if ports[host][tun.PortName] != tag {
							t.Errorf("%s: tunnel port %s tag %d, database %d", host, tun.PortName, ports[host][tun.PortName], tag)
						}
						if got := vxlanVNIs(t, c.Hosts[host])[tun.PortName]; got != tun.VNI {
							t.Errorf("%s: device %s VNI %d, database %d", host, tun.PortName, got, tun.VNI)
						}
					}
				}
				if len(v.Maps) != 4 {
					t.Fatalf("interface mappings %+v, want 4", v.Maps)
				}
				for _, m := range v.Maps {
					host := "hostA"
					if m.Node == "r3" {
						host = "hostB"
					}
					if m.OVSPort != ident.HostPortName(c.lab, m.Node, m.Iface) || ports[host][m.OVSPort] != m.Tag || m.LastVerifiedAt == nil {
						t.Errorf("mapping %+v: the bridge holds tag %d", m, ports[host][m.OVSPort])
					}
				}
			})

			t.Run("destroy leaves nothing", func(t *testing.T) {
				var d wire.DeployResponse
				if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/destroy", "", nil, &d); code != 200 || d.State != "stopped" {
					t.Fatalf("destroy: %d %+v", code, d)
				}
				for name, h := range c.Hosts {
					if p := bridgePorts(t, h); len(p) != 0 {
						t.Errorf("%s: ports left %v", name, p)
					}
					if d := vxlanVNIs(t, h); len(d) != 0 {
						t.Errorf("%s: devices left %v", name, d)
					}
				}
				for _, n := range []string{"r1", "r2", "r3"} {
					if _, err := os.Stat("/run/netns/" + ident.NamespaceName(c.lab, n)); err == nil {
						t.Errorf("namespace of %s left", n)
					}
				}
			})

			t.Run("agent down during deploy, then back", func(t *testing.T) {
				if err := c.Agents["hostB"].Kill(); err != nil {
					t.Fatal(err)
				}
				var d wire.DeployResponse
				if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/deploy", "", nil, &d); code != 200 || d.State != "error" {
					t.Fatalf("deploy with hostB down: %d %+v", code, d)
				}
				for _, l := range d.Links { // what hostB holds is unknown, never up
					want := "up"
					if l.LinkName == "r2:eth2-r3:eth1" {
						want = "unknown"
					}
					if l.Status != want || want == "unknown" && l.Error != "hostB unreachable" {
						t.Errorf("link %+v, want %s", l, want)
					}
				}
				c.StartAgent(t, "hostB")
				c.WaitAgent(t, "hostB")
				if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/deploy", "", nil, &d); code != 200 || d.State != "running" {
					t.Fatalf("deploy again: %d %+v", code, d)
				}
				c.addr(t, "r2", "eth2", "192.168.91.2/24")
				c.addr(t, "r3", "eth1", "192.168.91.3/24")
				if got := c.ping(t, "r2", "192.168.91.3"); got != 3 {
					t.Errorf("r2 → r3 after the agent returned: %d/3", got)
				}
			})

			t.Run("destroy waits for a host that is down", func(t *testing.T) {
				if err := c.Agents["hostB"].Kill(); err != nil {
					t.Fatal(err)
				}
				var d wire.DeployResponse
				if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/destroy", "", nil, &d); code != 202 || d.State != "stopping" || !strings.Contains(d.Error, "hostB") {
					t.Fatalf("destroy with hostB down: %d %+v", code, d)
				}
				if p := bridgePorts(t, c.Hosts["hostA"]); len(p) != 0 {
					t.Errorf("hostA kept ports %v", p)
				}
				c.StartAgent(t, "hostB")
				deadline := time.Now().Add(30 * time.Second)
				for c.labView(t).State != "stopped" {
					if time.Now().After(deadline) {
						t.Fatalf("teardown not finished after hostB returned: %+v", c.labView(t).Lab)
					}
					time.Sleep(50 * time.Millisecond)
				}
				if p := bridgePorts(t, c.Hosts["hostB"]); len(p) != 0 {
					t.Errorf("hostB kept ports %v", p)
				}
			})
		})
	}
}

// TestConvergeHeals drifts and wipes a host's data plane and lets the
// controller's convergence bring it back, with the database in agreement.
func TestConvergeHeals(t *testing.T) {
	c := newCluster(t, "sqlite")
	if code := c.Call(t, "POST", "/api/v1/labs", "application/yaml", fmt.Appendf(nil, labYAML, c.lab), nil); code != 201 {
		t.Fatalf("create lab: %d", code)
	}
	var dep wire.DeployResponse
	if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/deploy", "", nil, &dep); code != 200 || dep.State != "running" {
		t.Fatalf("deploy: %d %+v", code, dep)
	}
	c.addr(t, "r2", "eth2", "192.168.91.2/24")
	c.addr(t, "r3", "eth1", "192.168.91.3/24")
	v := c.labView(t)
	var cross store.LinkState
	for _, ls := range v.Links {
		if ls.CrossHost {
			cross = ls
		}
	}
	port := cross.Tunnel.PortName

	converge := func(t *testing.T) wire.ConvergeResponse {
		t.Helper()
		var r wire.ConvergeResponse
		if code := c.Call(t, "POST", "/api/v1/converge", "", nil, &r); code != 200 {
			t.Fatalf("converge: %d", code)
		}
		return r
	}
	agree := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			a, b := bridgePorts(t, c.Hosts["hostA"])[port], bridgePorts(t, c.Hosts["hostB"])[port]
			if a == *cross.SourceTag && b == *cross.TargetTag && c.ping(t, "r2", "192.168.91.3") == 3 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tunnel tags %d/%d, database %d/%d, or no traffic", a, b, *cross.SourceTag, *cross.TargetTag)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("device deleted and tag changed by hand", func(t *testing.T) {
		if _, err := c.Hosts["hostB"].Exec(t.Context(), "ip", "link", "del", port); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Hosts["hostA"].VSCtl(t.Context(), "set", "port", port, "tag=7"); err != nil {
			t.Fatal(err)
		}
		r := converge(t)
		for _, a := range r.Agents {
			if a.Error != "" || a.Skipped != "" || a.Results["error"] != 0 {
				t.Errorf("agent %+v", a)
			}
		}
		agree(t)
	})

	t.Run("device deleted, repaired in a round by digest", func(t *testing.T) {
		held := func() float64 {
			return agentMetric(t, c, "hostB", `netloom_agent_conditional_declarations_total{outcome="held"}`)
		}
		before := held()
		if _, err := c.Hosts["hostB"].Exec(t.Context(), "ip", "link", "del", port); err != nil {
			t.Fatal(err)
		}
		converge(t)
		if after := held(); after <= before {
			t.Errorf("hostB took %v declarations by digest, before %v: want one more", after, before)
		}
		agree(t)
	})

	t.Run("OVS database wiped and daemons restarted", func(t *testing.T) {
		if err := c.Hosts["hostB"].RestartOVS(t.Context(), true); err != nil {
			t.Fatal(err)
		}
		if p := bridgePorts(t, c.Hosts["hostB"]); len(p) > 1 {
			t.Fatalf("the wiped database still holds ports %v", p)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := converge(t)
			ok := true
			for _, a := range r.Agents {
				ok = ok && a.Error == "" && a.Skipped == "" && a.Results["error"] == 0
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("convergence after the wipe: %+v", r.Agents)
			}
			time.Sleep(200 * time.Millisecond)
		}
		agree(t)
		if v := c.labView(t); !v.Links[1].SourceAttached || !v.Links[1].TargetAttached {
			t.Errorf("attached flags after healing: %+v", v.Links[1])
		}
	})

	t.Run("node port retagged while its agent was down", func(t *testing.T) {
		if err := c.Agents["hostB"].Kill(); err != nil {
			t.Fatal(err)
		}
		nodePort := ident.HostPortName(c.lab, "r3", "eth1")
		if _, err := c.Hosts["hostB"].VSCtl(t.Context(), "set", "port", nodePort, "tag=9"); err != nil {
			t.Fatal(err)
		}
		c.StartAgent(t, "hostB")
		c.WaitAgent(t, "hostB")
		// The agent adopted tag 9 from the bridge; the database says otherwise.
		converge(t)
		if got := bridgePorts(t, c.Hosts["hostB"])[nodePort]; got != *cross.TargetTag {
			t.Fatalf("node port tag %d after convergence, database %d", got, *cross.TargetTag)
		}
		agree(t)
	})

	t.Run("owned orphan removed, unowned port kept", func(t *testing.T) {
		h := c.Hosts["hostA"]
		orphan := wire.DeclaredTunnel{LinkID: "r1:eth7-r9:eth1", LabID: c.lab, VNI: 777, LocalIP: "10.77.0.1", RemoteIP: "10.77.0.2",
			ExpectedVLAN: 3999, PortName: ident.PortName(c.lab, "r1:eth7-r9:eth1")}
		// As a controller would, at the generation of its last round.
		var last wire.ConvergeResponse
		if code := c.Call(t, "GET", "/api/v1/converge", "", nil, &last); code != 200 || last.Generation == 0 {
			t.Fatalf("last round: %d %+v", code, last)
		}
		body, _ := json.Marshal(wire.DeclareStateRequest{Tunnels: []wire.DeclaredTunnel{orphan}, Generation: &last.Generation})
		req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://10.77.0.1:7401/overlay/declare-state", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.AgentToken)
		req.Header.Set(wire.CredentialHeader, c.Credential(t, "hostA"))
		resp, err := c.HTTP.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("declare the orphan: %v %v", err, resp)
		}
		resp.Body.Close()
		if _, err := h.VSCtl(t.Context(), "add-port", "netloom0", "vxlan-deadbeef", "tag=3998", "--", "set", "interface", "vxlan-deadbeef", "type=internal"); err != nil {
			t.Fatal(err)
		}
		if _, ok := bridgePorts(t, h)[orphan.PortName]; !ok {
			t.Fatal("the orphan was not made")
		}
		r := converge(t)
		removed := 0
		for _, a := range r.Agents {
			removed += len(a.OrphansRemoved)
		}
		ports := bridgePorts(t, h)
		if _, ok := ports[orphan.PortName]; ok || removed != 1 {
			t.Errorf("owned orphan still there (removed %d): %v", removed, ports)
		}
		if _, ok := ports["vxlan-deadbeef"]; !ok {
			t.Error("the unowned port was removed")
		}
		agree(t)
	})
}

// TestLabApply applies a containerlab topology (groups, kinds, exec, both
// link forms, with host added) through the CLI, proves traffic on its
// same-host and cross-host links, then edits it: --plan prints exactly the
// change, and applying changes exactly that.
func TestLabApply(t *testing.T) {
	c := newCluster(t, "sqlite")
	data, err := os.ReadFile("../topology/testdata/ring.clab.yml")
	// Its images would need a container runtime these hosts do not offer:
	// the nodes run as namespaces here.
	data = regexp.MustCompile(`(?m)^\s*image: .*\n`).ReplaceAll(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The file as containerlab has it, but for its name: labs named after the
	// bed are cleaned up with it.
	file := filepath.Join(c.Ctl.Dir, "ring.clab.yml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), "name: ring", "name: "+c.lab, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := c.CLI(t, "lab", "apply", "-f", file)
	if err != nil {
		t.Fatalf("lab apply: %v\n%s", err, out)
	}
	for _, want := range []string{"(new): 7 changes", "+ node rt1", "+ link pc2:eth1-rt2:eth2", "warning: startup-config (no image) (nodes rt1, rt2): not applied", "warning: env (no image) (nodes pc1, pc2, rt1, rt2): not applied", "is running"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	// The routers run no FRR in a namespace: give their ends addresses by hand.
	c.addr(t, "rt1", "eth2", "10.1.1.1/24")
	c.addr(t, "rt1", "eth1", "10.0.12.1/24")
	c.addr(t, "rt2", "eth1", "10.0.12.2/24")
	c.addr(t, "rt2", "eth2", "10.1.2.1/24")
	for _, tt := range []struct{ from, to, what string }{
		{"pc1", "10.1.1.1", "cross-host pc1 (hostB, addressed by exec) to rt1 (hostA)"},
		{"rt1", "10.0.12.2", "same-host rt1 to rt2"},
		{"pc2", "10.1.2.1", "same-host pc2 (host set on the node over its group's) to rt2"},
	} {
		if got := c.ping(t, tt.from, tt.to); got != 3 {
			t.Errorf("%s: %d/3", tt.what, got)
		}
	}
	if out, err := c.CLI(t, "link", "ls", c.lab); err != nil || !strings.Contains(out, "pc1:eth1-rt1:eth2") || !strings.Contains(out, "hostB↔hostA") {
		t.Errorf("link ls: %v\n%s", err, out)
	}
	before := c.labView(t)
	devsBefore := vxlanVNIs(t, c.Hosts["hostB"])

	// The edit: pc2's link goes, pc3 arrives on hostB with a link to rt2.
	edited := strings.Replace(string(data), "name: ring", "name: "+c.lab, 1)
	edited = strings.Replace(edited, `    - type: veth
      endpoints:
        - node: pc2
          interface: eth1
        - node: rt2
          interface: eth2
`, `    - endpoints: ["pc3:eth1", "rt2:eth3"]
`, 1)
	edited = strings.Replace(edited, "  links:\n", "    pc3:\n      group: edge\n  links:\n", 1)
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = c.CLI(t, "lab", "apply", "-f", file, "--plan")
	if err != nil {
		t.Fatalf("apply --plan: %v\n%s", err, out)
	}
	wantPlan := "lab " + c.lab + ": 3 changes\n  + node pc3\n  + link pc3:eth1-rt2:eth3\n  - link pc2:eth1-rt2:eth2\n"
	if !strings.Contains(out, wantPlan) {
		t.Fatalf("plan:\n%s\nwant:\n%s", out, wantPlan)
	}
	if after := c.labView(t); len(after.Nodes) != len(before.Nodes) || len(after.Links) != len(before.Links) {
		t.Fatal("--plan changed the lab")
	}

	out, err = c.CLI(t, "-o", "json", "lab", "apply", "-f", file)
	if err != nil {
		t.Fatalf("apply the edit: %v\n%s", err, out)
	}
	after := c.labView(t)
	names := map[string]store.LinkState{}
	for _, ls := range after.Links {
		names[ls.Name] = ls
	}
	if _, ok := names["pc2:eth1-rt2:eth2"]; ok || len(after.Links) != 3 || names["pc3:eth1-rt2:eth3"].ActualState != "up" {
		t.Fatalf("links after the edit: %+v", after.Links)
	}
	for _, ls := range before.Links {
		if ls.Name == "pc2:eth1-rt2:eth2" {
			continue
		}
		if now := names[ls.Name]; *now.SourceTag != *ls.SourceTag || *now.TargetTag != *ls.TargetTag {
			t.Errorf("untouched link %s changed tags: %d/%d → %d/%d", ls.Name, *ls.SourceTag, *ls.TargetTag, *now.SourceTag, *now.TargetTag)
		}
	}
	devsAfter := vxlanVNIs(t, c.Hosts["hostB"])
	if len(devsAfter) != len(devsBefore)+1 {
		t.Errorf("hostB devices %v → %v, want one more (pc3's link)", devsBefore, devsAfter)
	}
	for name, vni := range devsBefore {
		if devsAfter[name] != vni {
			t.Errorf("device %s changed", name)
		}
	}
	// The interface goes with its link: pc2 has no way to rt2 left.
	if out, err := testbed.ExecIn(t.Context(), ident.NamespaceName(c.lab, "pc2"), "ip", "link", "show", "eth1"); err == nil {
		t.Errorf("pc2 still has eth1 after its link was removed:\n%s", out)
	}
	c.addr(t, "pc3", "eth1", "10.1.3.2/24")
	c.addr(t, "rt2", "eth3", "10.1.3.1/24")
	if got := c.ping(t, "pc3", "10.1.3.1"); got != 3 {
		t.Errorf("pc3 (new, hostB) to rt2 (hostA): %d/3", got)
	}
	if out, err := c.CLI(t, "lab", "destroy", c.lab, "--delete"); err != nil {
		t.Errorf("destroy: %v\n%s", err, out)
	}
}

// agentMetric reads one series of a host's agent's metrics, 0 when absent.
func agentMetric(t *testing.T, c *cluster, host, series string) float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+c.Hosts[host].Underlay.Addr().String()+":7401/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.AgentToken)
	req.Header.Set(wire.CredentialHeader, c.Credential(t, host))
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics of %s: %d %v", host, resp.StatusCode, err)
	}
	for _, line := range strings.Split(body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
