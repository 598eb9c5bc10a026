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
		{Name: "rt1", Kind: "frr", Image: "quay.io/frrouting/frr:9.1.0", Host: "hostA", Unused: []string{"mgmt-ipv4"},
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
	if w := strings.Join(lab.Warnings(), "\n"); w != "mgmt-ipv4 (nodes rt1): not applied" {
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
