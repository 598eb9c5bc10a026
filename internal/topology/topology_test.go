package topology

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/wire"
)

func TestDecodeDemo(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := Decode("demo.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := Lab{
		Name: "demo",
		Nodes: []Node{
			{Name: "r1", Kind: "linux", Host: "hostA"},
			{Name: "r2", Kind: "linux", Host: "hostA"},
			{Name: "r3", Kind: "linux", Host: "hostB"},
		},
		Links: []Link{
			{A: Endpoint{Node: "r1", Iface: "eth1"}, B: Endpoint{Node: "r2", Iface: "eth1"}},
			{A: Endpoint{Node: "r2", Iface: "eth2"}, B: Endpoint{Node: "r3", Iface: "eth1"}},
		},
	}
	if diff := cmp.Diff(want, lab); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got := lab.Links[1].Name(); got != "r2:eth2-r3:eth1" {
		t.Errorf("link name %q", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"not yaml", "name: [", []string{"demo.yaml:"}},
		{"bad name and no nodes", "name: a b\ntopology: {}\n", []string{"demo.yaml:1:7: name", "topology.nodes: no nodes"}},
		{"path elements as names", "name: ..\ntopology:\n  nodes: {.: {}}\n", []string{`demo.yaml:1:7: name: "..": want 1 to 64 characters of [A-Za-z0-9_.-], not . or ..`,
			"topology.nodes..: the node name: want 1 to 64 characters of [A-Za-z0-9_.-], not . or .."}},
		{"unknown node, eth0, reused endpoint", `name: x
topology:
  nodes:
    r1: {}
    r2: {}
  links:
    - endpoints: ["r1:eth1", "r9:eth1"]
    - endpoints: ["r1:eth1", "r2:eth0"]
`, []string{`demo.yaml:7:30: topology.links[0].endpoints[1]: "r9": no such node`,
			`demo.yaml:8:19: topology.links[1].endpoints[0]: r1:eth1 is also used by topology.links[0]`,
			`demo.yaml:8:30: topology.links[1].endpoints[1]: "eth0"`}},
		{"bridge to bridge", `name: x
topology:
  nodes:
    br1: {kind: bridge}
    br2: {kind: ovs-bridge}
  links:
    - endpoints: ["br1:eth1", "br2:eth1"]
`, []string{`demo.yaml:7:18: topology.links[0].endpoints: a link between bridges br1 and br2`}},
		{"endpoint without interface", "name: x\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [r1, r1:eth2]\n", []string{`"r1": want node:interface`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("demo.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestBridgeKinds loads containerlab's bridge kinds as bridges: no
// "not applied" warning, and IsBridge says so.
func TestBridgeKinds(t *testing.T) {
	t.Parallel()
	lab, err := Decode("br.yaml", []byte(`name: br01
topology:
  nodes:
    br1: {kind: bridge, host: hostA}
    br2: {kind: ovs-bridge}
    srl1: {}
  links:
    - endpoints: ["srl1:eth1", "br1:eth1"]
    - endpoints: ["srl1:eth2", "br2:eth1"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if w := lab.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q, want none", w)
	}
	withExec, err := Decode("br.yaml", []byte("name: x\ntopology:\n  nodes:\n    br1: {kind: bridge, exec: [\"true\"]}\n"))
	if err != nil || !slices.Equal(withExec.Warnings(), []string{"exec of kind bridge (nodes br1): not applied"}) {
		t.Errorf("a bridge's exec: %v %q, want it named as not applied", err, withExec.Warnings())
	}
	for _, n := range lab.Nodes {
		if got, want := IsBridge(n.Kind), n.Name != "srl1"; got != want {
			t.Errorf("IsBridge(%s's kind %q) = %v, want %v", n.Name, n.Kind, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	data, _ := os.ReadFile("testdata/demo.yaml")
	f.Add(data)
	f.Add([]byte("name: x\ntopology: {nodes: {a: {}}, links: [{endpoints: [a:e1, a:e2]}]}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lab, err := Decode("f.yaml", b)
		if err == nil {
			if verr := lab.Validate(); verr != nil {
				t.Fatalf("decoded lab fails validation: %v", verr)
			}
		}
	})
}

// TestContainerlabFile loads a containerlab topology unchanged: kinds,
// groups and defaults merged as containerlab merges them, both link forms,
// and what the netns runtime cannot apply reported once per setting.
func TestContainerlabFile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/ring.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := Decode("ring.clab.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LAB": "ring"}
	rt := &wire.Container{Env: env, Binds: []string{"daemons:/etc/frr/daemons"}}
	want := []Node{
		{Name: "pc1", Kind: "linux", Image: "alpine:3.20", Host: "hostB", Exec: []string{"ip addr add 10.1.1.2/24 dev eth1", "ip route add 10.0.0.0/8 via 10.1.1.1"},
			NodeSettings: wire.NodeSettings{Container: &wire.Container{Env: env}}},
		{Name: "pc2", Kind: "linux", Image: "alpine:3.20", Host: "hostA", Exec: []string{"ip addr add 10.1.2.2/24 dev eth1"},
			NodeSettings: wire.NodeSettings{Container: &wire.Container{Env: env}}},
		{Name: "rt1", Kind: "frr", Image: "quay.io/frrouting/frr:9.1.0", Host: "hostA", MgmtIPv4: "172.100.100.11",
			NodeSettings: wire.NodeSettings{Container: rt, StartupConfig: "rt1/frr.conf"}},
		{Name: "rt2", Kind: "frr", Image: "quay.io/frrouting/frr:9.1.0", Host: "hostA",
			NodeSettings: wire.NodeSettings{Container: rt, StartupConfig: "rt2/frr.conf"}},
	}
	if diff := cmp.Diff(want, lab.Nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if len(lab.Links) != 3 || lab.Links[2].Name() != "pc2:eth1-rt2:eth2" {
		t.Errorf("links %+v", lab.Links)
	}
	if lab.Mgmt.Subnet != "172.100.100.0/24" {
		t.Errorf("mgmt subnet %q", lab.Mgmt.Subnet)
	}
	if w := strings.Join(lab.Warnings(), "\n"); w != "mgmt.network: not applied: each lab has its own management segment" {
		t.Errorf("warnings:\n%s", w)
	}
	if refs := lab.Refs(); !slices.Equal(refs, []string{"daemons", "rt1/frr.conf", "rt2/frr.conf"}) {
		t.Errorf("refs %q", refs)
	}
	if _, err := Decode("x.yml", []byte("name: x\ntopology:\n  nodes: {a: {group: nope}}\n")); err == nil || !strings.Contains(err.Error(), `x.yml:3:22: topology.nodes.a.group: "nope": no such group`) {
		t.Errorf("unknown group: %v", err)
	}
}

// TestLinkMTUAndMAC: a link's mtu and an endpoint's mac (the extended form,
// with or without type) are read, and bad ones are errors at their place.
func TestLinkMTUAndMAC(t *testing.T) {
	t.Parallel()
	lab, err := Decode("m.yml", []byte(`name: m
topology:
  nodes: {a: {}, b: {}}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      mtu: 9000
    - type: veth
      endpoints: [{node: a, interface: eth2, mac: "02:00:00:00:00:0a"}, {node: b, interface: eth2}]
      mtu: 1600
      allow-fragmentation: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if l := lab.Links[0]; l.MTU != 9000 || l.AllowFragmentation {
		t.Errorf("link 0: %+v", l)
	}
	if l := lab.Links[1]; l.MTU != 1600 || !l.AllowFragmentation || l.A.MAC != "02:00:00:00:00:0a" || l.B.MAC != "" {
		t.Errorf("link 1: %+v", l)
	}
	tests := []struct{ link, want string }{
		{`{endpoints: ["a:eth1", "b:eth1"], mtu: 20000}`, "m.yml:5:46: topology.links[0].mtu: 20000: want 68 to 9216"},
		{`{endpoints: [{node: a, interface: eth1, mac: "01:00:5e:00:00:01"}, "b:eth1"]}`, `topology.links[0].endpoints[0].mac: "01:00:5e:00:00:01": a multicast address`},
		{`{endpoints: [{node: a, interface: eth1, mac: "nope"}, "b:eth1"]}`, `"nope": want a MAC address`},
		{`{endpoints: [{node: a, interface: eth1, mac: "02:00:00:00:00:01"}, {node: b, interface: eth1, mac: "02:00:00:00:00:01"}]}`, "02:00:00:00:00:01 is also the MAC of a:eth1"},
	}
	for _, tt := range tests {
		_, err := Decode("m.yml", []byte("name: m\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - "+tt.link+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.link, err, tt.want)
		}
	}
}

// TestUnknownKeys: a key close to a known one is a typo, an error at the
// key with the key meant; a containerlab key netloom does not apply and a
// key far from any known one are warnings, once each.
func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	const links = "  links:\n    - endpoints: [r1:eth1, r2:eth1]\n"
	tests := []struct {
		name    string
		yaml    string
		wantErr string // the whole error; "" when the file loads
		warn    []string
	}{
		{"node host", "name: x\ntopology:\n  nodes:\n    r1: {hots: hostA}\n    r2: {}\n" + links, `k.yml:4:10: topology.nodes.r1.hots: unknown key: did you mean host?`, nil},
		{"node image", "name: x\ntopology:\n  nodes:\n    r1:\n      imagee: alpine\n    r2: {}\n" + links, `k.yml:5:7: topology.nodes.r1.imagee: unknown key: did you mean image?`, nil},
		{"capital letter", "name: x\ntopology:\n  nodes:\n    r1: {Image: alpine}\n    r2: {}\n" + links, `k.yml:4:10: topology.nodes.r1.Image: unknown key: did you mean image?`, nil},
		{"kind binds", "name: x\ntopology:\n  kinds:\n    linux: {bnds: [a:/a]}\n  nodes: {r1: {}, r2: {}}\n" + links, `k.yml:4:13: topology.kinds.linux.bnds: unknown key: did you mean binds?`, nil},
		{"defaults", "name: x\ntopology:\n  defaults: {startup-confg: a.cfg}\n  nodes: {r1: {}, r2: {}}\n" + links, `k.yml:3:14: topology.defaults.startup-confg: unknown key: did you mean startup-config?`, nil},
		{"two as near", "name: x\ntopology:\n  nodes: {r1: {cpd: x}, r2: {}}\n" + links, `k.yml:3:16: topology.nodes.r1.cpd: unknown key: did you mean cmd or cpu?`, nil},
		{"link endpoints", "name: x\ntopology:\n  nodes: {r1: {}, r2: {}}\n  links:\n    - endpionts: [r1:eth1, r2:eth1]\n", `k.yml:5:7: topology.links[0].endpionts: unknown key: did you mean endpoints?`, nil},
		{"endpoint interface", "name: x\ntopology:\n  nodes: {r1: {}, r2: {}}\n  links:\n    - endpoints: [{node: r1, interfce: eth1}, r2:eth1]\n",
			"invalid lab: 2 problems\nk.yml:5:19: topology.links[0].endpoints[0]: want {node: …, interface: …, mac: …}\nk.yml:5:30: topology.links[0].endpoints[0].interfce: unknown key: did you mean interface?", nil},
		{"top level", "name: x\ntopolgy:\n  nodes: {r1: {}}\n", "invalid lab: 2 problems\nk.yml:2:1: topolgy: unknown key: did you mean topology?\ntopology.nodes: no nodes", nil},
		{"containerlab keys are warnings", "name: x\nprefix: \"\"\nmgmt: {network: m, ipv6-subnet: \"3fff::/64\"}\ntopology:\n  nodes: {r1: {mgmt-ipv4: 172.20.20.5, type: ixrd2}, r2: {}}\n" + links, "",
			[]string{"type (nodes r1): not applied", "mgmt.ipv6-subnet: not applied: each lab has its own management segment", "mgmt.network: not applied: each lab has its own management segment"}},
		{"mgmt key typo", "name: x\nmgmt: {ipv4-subnt: 10.0.0.0/24}\ntopology:\n  nodes: {r1: {}}\n", "k.yml:2:8: mgmt.ipv4-subnt: unknown key: did you mean ipv4-subnet?", nil},
		{"anchors and merge keys", "name: x\ntopology:\n  nodes:\n    r1: &n {image: alpine, type: t1}\n    r2: *n\n  links:\n    - &l {endpoints: [r1:eth1, r2:eth1], mtu: 1400}\n    - {<<: *l, endpoints: [r1:eth2, r2:eth2]}\n", "",
			[]string{"type (nodes r1, r2): not applied"}},
		{"two edits from a short key", "name: x\ntopology:\n  nodes: {r1: {hxxt: a}, r2: {}}\n" + links, "", []string{"unknown key hxxt (nodes r1): not applied"}},
		{"two edits from a long key", "name: x\ntopology:\n  nodes: {r1: {startup-cnofg: a}, r2: {}}\n" + links, "k.yml:3:16: topology.nodes.r1.startup-cnofg: unknown key: did you mean startup-config?", nil},
		{"far from any key", "name: x\nfrobnicate: 1\ntopology:\n  nodes: {r1: {colour: red}, r2: {colour: blue}}\n  links:\n    - endpoints: [r1:eth1, r2:eth1]\n      weight: 3\n", "",
			[]string{"unknown key colour (nodes r1, r2): not applied", "unknown key frobnicate: ignored", "unknown key topology.links[0].weight: ignored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lab, err := Decode("k.yml", []byte(tt.yaml))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error\n%v\nlacks\n%s", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.warn, lab.Warnings()); err == nil && diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInterfaceNames: a bad interface name is told which rule it broke.
func TestInterfaceNames(t *testing.T) {
	t.Parallel()
	const rule = "(Linux names are 1 to 15 characters of A-Z a-z 0-9 _ . -)"
	tests := []struct{ iface, want string }{
		{"ethernet-1/1", `"ethernet-1/1": "/" is not allowed in an interface name ` + rule},
		{"e 1", `"e 1": " " is not allowed in an interface name ` + rule},
		{"eth1é", `"eth1é": "é" is not allowed in an interface name ` + rule},
		{"averyverylongname", `"averyverylongname": 17 characters, at most 15 in an interface name ` + rule},
		{"lo", `"lo": the loopback interface cannot be a link's`},
		{"eth0", `"eth0": the management interface; link interfaces start at eth1`},
		{"", `"": an empty interface name ` + rule},
	}
	for _, tt := range tests {
		t.Run(tt.iface, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("i.yml", []byte("name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:"+tt.iface+"\", b:eth1]\n"))
			want := "invalid lab: i.yml:5:19: topology.links[0].endpoints[0]: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("got  %v\nwant %s", err, want)
			}
		})
	}
	if _, err := Decode("i.yml", []byte("name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [a:e1-1_x.y, b:eth15_567890123]\n")); err != nil {
		t.Errorf("good names: %v", err)
	}
}

// TestErrorsInFileOrder: every problem on its own line, sorted by
// position whatever check found it, and yaml's type errors one by one.
func TestErrorsInFileOrder(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"checks in file order", `name: x
topology:
  nodes:
    r1: {imagee: alpine}
    r2: {group: nope}
  links:
    - endpoints: [r1:ethernet-1/1, r9:eth1]
      mtu: 10
`, `invalid lab: 5 problems
o.yml:4:10: topology.nodes.r1.imagee: unknown key: did you mean image?
o.yml:5:17: topology.nodes.r2.group: "nope": no such group
o.yml:7:19: topology.links[0].endpoints[0]: "ethernet-1/1": "/" is not allowed in an interface name (Linux names are 1 to 15 characters of A-Z a-z 0-9 _ . -)
o.yml:7:36: topology.links[0].endpoints[1]: "r9": no such node
o.yml:8:12: topology.links[0].mtu: 10: want 68 to 9216`},
		{"type errors one by one", "name: x\ntopology:\n  nodes:\n    r1: {exec: run}\n    r2: {imagee: a, env: [a]}\n",
			`invalid lab: 3 problems
o.yml:4: file: "run": want a list
o.yml:5: file: a list: want a mapping
o.yml:5:10: topology.nodes.r2.imagee: unknown key: did you mean image?`},
		{"a link left out keeps the others' places", `name: x
topology:
  nodes: {r1: {}, r2: {}}
  links:
    - endpionts: [r1:eth1, r2:eth1]
    - endpoints: [r1:eth2, r3:eth1]
`, `invalid lab: 3 problems
o.yml:5:7: topology.links[0].endpionts: unknown key: did you mean endpoints?
o.yml:5:7: topology.links[0].endpoints: 0 endpoints: want 2
o.yml:6:28: topology.links[1].endpoints[1]: "r3": no such node`},
		{"not yaml", "name: [", "invalid lab: o.yml:1: file: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("o.yml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnsupportedContainerlab: what netloom does not support of
// containerlab's is an error that says what the user gets.
func TestUnsupportedContainerlab(t *testing.T) {
	t.Parallel()
	_, err := Decode("u.yml", []byte(`name: u
topology:
  nodes: {r1: {}, r2: {}}
  links:
    - endpoints: ["r1:eth1", "mgmt-net:r1-mgmt"]
    - endpoints: ["r2:eth1", "macvlan:enp0s3"]
`))
	for _, want := range []string{`u.yml:5:30: topology.links[0].endpoints[1]: "mgmt-net:r1-mgmt": containerlab's mgmt-net endpoints are not supported: every node has eth0`,
		`u.yml:6:30: topology.links[1].endpoints[1]: "macvlan:enp0s3": containerlab's macvlan endpoints`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
}

// TestMgmtAndHostEndpoints: the management subnet, the nodes' addresses in
// it, and host:IFACE endpoints, each problem at its place.
func TestMgmtAndHostEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, wantErr string
		check               func(t *testing.T, lab Lab)
	}{
		{"defaults", "name: m\ntopology:\n  nodes: {r1: {}, br: {kind: bridge}, r2: {network-mode: none}}\n", "", func(t *testing.T, lab Lab) {
			if lab.Mgmt.Subnet != "" || !HasMgmt(lab.Nodes[1].Kind, lab.Nodes[1].NetworkMode) || HasMgmt(lab.Nodes[0].Kind, "") || HasMgmt("linux", lab.Nodes[2].NetworkMode) {
				t.Errorf("lab %+v", lab)
			}
		}},
		{"asked address", "name: m\nmgmt: {ipv4-subnet: 10.9.0.0/16}\ntopology:\n  nodes: {r1: {mgmt-ipv4: 10.9.3.4}}\n", "", func(t *testing.T, lab Lab) {
			if lab.Mgmt.Subnet != "10.9.0.0/16" || lab.Nodes[0].MgmtIPv4 != "10.9.3.4" {
				t.Errorf("lab %+v", lab)
			}
		}},
		{"host endpoint", "name: m\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [r1:eth1, host:veth-r1]\n", "", func(t *testing.T, lab Lab) {
			if lab.Links[0].B != (Endpoint{Node: "host", Iface: "veth-r1"}) {
				t.Errorf("links %+v", lab.Links)
			}
		}},
		{"bridge address", "name: m\ntopology:\n  nodes: {br: {kind: bridge, mgmt-ipv4: 172.20.20.9}}\n", "", func(t *testing.T, lab Lab) {
			if w := strings.Join(lab.Warnings(), "\n"); w != "mgmt-ipv4 of kind bridge (nodes br): not applied" || lab.Nodes[0].MgmtIPv4 != "" {
				t.Errorf("warnings %q, node %+v", w, lab.Nodes[0])
			}
		}},
		{"network-mode host", "name: m\ntopology:\n  nodes: {r1: {network-mode: host}}\n", "", func(t *testing.T, lab Lab) {
			if w := strings.Join(lab.Warnings(), "\n"); w != "network-mode host (nodes r1): not applied" {
				t.Errorf("warnings %q", w)
			}
		}},
		{"bad subnet", "name: m\nmgmt: {ipv4-subnet: 10.9.0.1/16}\ntopology:\n  nodes: {r1: {}}\n",
			`m.yml:2:21: mgmt.ipv4-subnet: "10.9.0.1/16": host bits set: the subnet is 10.9.0.0/16`, nil},
		{"not a subnet", "name: m\nmgmt: {ipv4-subnet: \"3fff::/64\"}\ntopology:\n  nodes: {r1: {}}\n",
			`m.yml:2:21: mgmt.ipv4-subnet: "3fff::/64": want an IPv4 subnet such as 172.20.20.0/24`, nil},
		{"address outside the default subnet", "name: m\ntopology:\n  nodes: {r1: {mgmt-ipv4: 10.0.0.1}}\n",
			`m.yml:3:27: topology.nodes.r1.mgmt-ipv4: "10.0.0.1": not in the management subnet 172.20.20.0/24`, nil},
		{"addresses", "name: m\ntopology:\n  nodes:\n    r1: {mgmt-ipv4: 172.20.20.255}\n    r2: {mgmt-ipv4: 172.20.20.7}\n    r3: {mgmt-ipv4: 172.20.20.7}\n    r4: {mgmt-ipv4: 172.20.20.8, network-mode: none}\n    r5: {mgmt-ipv4: x}\n",
			"invalid lab: 4 problems\n" +
				`m.yml:4:21: topology.nodes.r1.mgmt-ipv4: "172.20.20.255": the subnet's network or broadcast address` + "\n" +
				`m.yml:6:21: topology.nodes.r3.mgmt-ipv4: "172.20.20.7": also the address of node r2` + "\n" +
				`m.yml:7:21: topology.nodes.r4.mgmt-ipv4: "172.20.20.8": the node has network-mode none: no management interface` + "\n" +
				`m.yml:8:21: topology.nodes.r5.mgmt-ipv4: "x": want an IPv4 address such as 172.20.20.2`, nil},
		{"node named host", "name: m\ntopology:\n  nodes: {host: {}}\n",
			`m.yml:3:17: topology.nodes.host: the node name host is reserved: host:IFACE endpoints name the host itself`, nil},
		{"host to host", "name: m\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [host:a, host:b]\n",
			`m.yml:5:18: topology.links[0].endpoints: a link between two host endpoints: one end must be a node's`, nil},
		{"link names that collide", "name: m\ntopology:\n  nodes: {a: {}, x-b: {}, b: {}}\n  links:\n    - endpoints: [a:p, x-b:q]\n    - endpoints: [a:p-x, b:q]\n",
			`m.yml:6:18: topology.links[1].endpoints: its name a:p-x-b:q is also that of topology.links[0] (a:p ↔ x-b:q): rename a node or an interface`, nil},
		{"host interface name", "name: m\ntopology:\n  nodes: {r1: {}}\n  links:\n    - endpoints: [r1:eth1, host:lo]\n",
			`m.yml:5:28: topology.links[0].endpoints[1]: "lo": the loopback interface cannot be a link's`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lab, err := Decode("m.yml", []byte(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) {
					t.Fatalf("got %v\nwant …%s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, lab)
		})
	}
}

// TestTypeProblems: a value of the wrong type is told in the file's terms,
// never with the Go type it was read into.
func TestTypeProblems(t *testing.T) {
	t.Parallel()
	tests := []struct{ file, want string }{
		{"name: x\ntopology:\n  nodes: [a, b]\n", "t.yml:3: file: a list: want a mapping"},
		{"name: x\ntopology:\n  nodes: {a: {cpu: lots}}\n", `t.yml:3: file: "lots": want a number`},
		{"name: x\ntopology:\n  nodes: {a: {exec: 3}}\n", `t.yml:3: file: "3": want a list`},
		{"name: x\ntopology:\n  nodes: {a: {env: [A]}}\n", "t.yml:3: file: a list: want a mapping"},
	}
	for _, tt := range tests {
		_, err := Decode("t.yml", []byte(tt.file))
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) || strings.Contains(err.Error(), "topology.raw") || strings.Contains(err.Error(), "[]string") {
			t.Errorf("%q: %v, want …%s", tt.file, err, tt.want)
		}
	}
}
