package topology

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/wire"
)

// frrLab is containerlab's current frr01 form in small: a router of the
// frr kind configured by a startup-config, daemons from extras.
const frrLab = `name: f
topology:
  kinds:
    frr:
      image: frr:1
      extras: {frr: {daemons: [ospfd, zebra]}}
      env: {A: kind, B: kind}
  nodes:
    r1:
      kind: frr
      startup-config: r1/frr.conf
      env: {B: node}
      env-files: [vars.env]
      binds: [extra:/opt/extra:ro]
      ports: ["8080:80"]
      cap-add: [SYS_PTRACE]
      sysctls: {net.ipv4.ip_forward: 0}
      memory: 512MB
      cpu: 1.5
      cmd: sleep infinity
`

func TestResolveFRRKind(t *testing.T) {
	t.Parallel()
	lab, err := Decode("f.yml", []byte(frrLab))
	if err != nil {
		t.Fatal(err)
	}
	if refs := lab.Refs(); strings.Join(refs, " ") != "extra r1/frr.conf vars.env" {
		t.Errorf("refs %q", refs)
	}
	err = lab.Ship("f.yml", map[string][]byte{"r1/frr.conf": []byte("hostname r1\n")})
	for _, want := range []string{"topology.nodes.r1.env-files[0]: vars.env: not shipped", "topology.nodes.r1.binds[0]: extra: not shipped"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing files: %v, want %q", err, want)
		}
	}
	files := map[string][]byte{"r1/frr.conf": []byte("hostname r1\n"), "vars.env": []byte("# comment\nC=file\nB=file\n"),
		"extra/a": []byte("a"), "extra/sub/b": []byte("b"), "unrelated": []byte("x")}
	if err := lab.Ship("f.yml", files); err != nil {
		t.Fatal(err)
	}
	if _, kept := lab.Files["unrelated"]; kept || len(lab.Files) != 4 {
		t.Errorf("kept files %v", lab.Files)
	}
	c, shipped, err := lab.Nodes[0].Resolve(lab.Files)
	if err != nil {
		t.Fatal(err)
	}
	want := &wire.Container{Cmd: "sleep infinity", Memory: "512MB", CPU: 1.5, Ports: []string{"8080:80"}, CapAdd: []string{"SYS_PTRACE"},
		Env:     map[string]string{"A": "kind", "B": "node", "C": "file"},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "1"},
		Binds: []string{".netloom/frr/daemons:/etc/frr/daemons", ".netloom/frr/frr.conf:/etc/frr/frr.conf",
			".netloom/frr/vtysh.conf:/etc/frr/vtysh.conf", "extra:/opt/extra:ro"}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("container (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	for _, f := range shipped {
		got[f.Path] = string(f.Data)
	}
	if got[".netloom/frr/frr.conf"] != "hostname r1\n" || got["extra/sub/b"] != "b" || len(got) != 5 {
		t.Errorf("shipped %v", got)
	}
	for _, line := range []string{"ospfd=yes", "bgpd=no", "vtysh_enable=yes"} {
		if !strings.Contains(got[".netloom/frr/daemons"], line+"\n") {
			t.Errorf("daemons lack %q:\n%s", line, got[".netloom/frr/daemons"])
		}
	}
}

func TestContainerSettingsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, node, want string }{
		{"bind without target", "binds: [onlysource]", `f.yml:6:15: topology.nodes.r1.binds[0]: "onlysource": want source:target`},
		{"relative bind target", "binds: [a:etc/x]", `target "etc/x": want an absolute path`},
		{"bad port", "ports: [80]", `topology.nodes.r1.ports[0]: "80": want [ip:]hostport:port`},
		{"bad memory", "memory: lots", `topology.nodes.r1.memory: "lots": want a size`},
		{"tiny memory", "memory: 1kb", `want at least 6MB`},
		{"bad capability", "cap-add: [net admin]", `topology.nodes.r1.cap-add[0]: "net admin"`},
		{"unknown daemon", "kind: frr\n      extras: {frr: {daemons: [ospfx]}}", `topology.nodes.r1.extras.frr.daemons: "ospfx": not an FRR daemon`},
		{"negative cpu", "cpu: -1", `topology.nodes.r1.cpu: -1: want 0 to 1024`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("f.yml", []byte("name: f\ntopology:\n  nodes:\n    r1:\n      image: x\n      "+tt.node+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestShipLimits(t *testing.T) {
	t.Parallel()
	lab, err := Decode("f.yml", []byte("name: f\ntopology:\n  nodes:\n    r1: {image: x, binds: [big:/big]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = lab.Ship("f.yml", map[string][]byte{"big": make([]byte, wire.MaxFileSize+1)})
	if err == nil || !strings.Contains(err.Error(), "files.big: 1048577 bytes: a shipped file may have at most 1048576") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestSettingsWithoutImage(t *testing.T) {
	t.Parallel()
	lab, err := Decode("f.yml", []byte("name: f\ntopology:\n  nodes:\n    r1: {binds: [a:/a]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(lab.Warnings(), "\n"); w != "binds (no image) (nodes r1): not applied" {
		t.Errorf("warnings %q", w)
	}
	if len(lab.Refs()) != 0 {
		t.Errorf("a netns node's binds are shipped: %q", lab.Refs())
	}
}
