package ident

import (
	"net/netip"
	"regexp"
	"testing"
)

func TestVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lab      string
		a, b     string
		wantLink string
		wantPort string
		wantVNI  uint32
	}{
		{"design vector", "lab-1", "R1:eth1", "R2:eth1", "R1:eth1-R2:eth1", "vxlan-83debe08", 4413936},
		{"design vector reversed", "lab-1", "R2:eth1", "R1:eth1", "R1:eth1-R2:eth1", "vxlan-83debe08", 4413936},
		{"uuid lab", "11111111-2222-3333-4444-555555555555", "ceos_2:eth1", "ceos_1:eth3",
			"ceos_1:eth3-ceos_2:eth1", "vxlan-c98dda9a", 5517954},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			link := LinkName(tt.a, tt.b)
			if link != tt.wantLink {
				t.Fatalf("LinkName(%q, %q) = %q, want %q", tt.a, tt.b, link, tt.wantLink)
			}
			if got := PortName(tt.lab, link); got != tt.wantPort {
				t.Errorf("PortName = %q, want %q", got, tt.wantPort)
			}
			if got := VNI(tt.lab, link); got != tt.wantVNI {
				t.Errorf("VNI = %d, want %d", got, tt.wantVNI)
			}
		})
	}
}

var portNameRE = regexp.MustCompile(`^vxlan-[0-9a-f]{8}$`)

func FuzzIdentifiers(f *testing.F) {
	f.Add("lab-1", "R1:eth1", "R2:eth1")
	f.Add("", "", "")
	f.Add("11111111-2222-3333-4444-555555555555", "ceos_1:eth3", "ceos_2:eth1")
	f.Fuzz(func(t *testing.T, lab, a, b string) {
		link := LinkName(a, b)
		if link != LinkName(b, a) {
			t.Fatalf("LinkName is not symmetric for %q, %q", a, b)
		}
		name := PortName(lab, link)
		if !portNameRE.MatchString(name) || len(name) > 15 {
			t.Fatalf("PortName(%q, %q) = %q: not a valid interface name", lab, link, name)
		}
		if v := VNI(lab, link); v < VNIBase || v >= VNIBase+vniSpan || v > 1<<24-1 {
			t.Fatalf("VNI(%q, %q) = %d: out of range", lab, link, v)
		}
		// A node's runtime name is a valid Docker container name, and
		// readable length whatever the names.
		if ns := NamespaceName(lab, a); !containerNameRE.MatchString(ns) || len(ns) > 75 {
			t.Fatalf("NamespaceName(%q, %q) = %q: not a short container name", lab, a, ns)
		}
	})
}

// containerNameRE is what Docker takes as a container name.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func TestNodeNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, lab, node, iface string
		wantNetns              string
	}{
		{"plain", "demo", "r1", "eth1", "nl-demo-r1-b1f16c"},
		{"uuid lab, cut to 32", "11111111-2222-3333-4444-555555555555", "ceos_1", "eth3", "nl-11111111-2222-3333-4444-55555555-ceos_1-3b239c"},
		{"unsafe characters", "my lab/1", "r1;rm", "eth1", "nl-my_lab_1-r1_rm-091b54"},
		{"dash in the lab", "sec-a", "x", "eth1", "nl-sec-a-x-2e51ab"},
		{"dash in the node", "sec", "a-x", "eth1", "nl-sec-a-x-44a28b"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if got := NamespaceName(tt.lab, tt.node); got != tt.wantNetns {
			t.Errorf("%s: NamespaceName = %q, want %q", tt.name, got, tt.wantNetns)
		}
		p := HostPortName(tt.lab, tt.node, tt.iface)
		if len(p) != 13 || p[:3] != HostPortPrefix || seen[p] {
			t.Errorf("%s: HostPortName = %q: want a unique nlp+10 hex name", tt.name, p)
		}
		seen[p] = true
	}
	if NamespaceName("sec-a", "x") == NamespaceName("sec", "a-x") {
		t.Error("two nodes whose lab and node names join the same share a namespace name")
	}
	if HostPortName("a", "b", "eth1") == HostPortName("a", "b", "eth2") {
		t.Error("two interfaces of one node share a host port name")
	}
}

func TestNodeMAC(t *testing.T) {
	a := NodeMAC("lab-1", "r1", "eth1")
	if a.String() != NodeMAC("lab-1", "r1", "eth1").String() {
		t.Error("NodeMAC is not stable")
	}
	if a[0]&0x01 != 0 || a[0]&0x02 == 0 {
		t.Errorf("%s: want a locally administered unicast address", a)
	}
	if a.String() == NodeMAC("lab-1", "r1", "eth2").String() {
		t.Error("two interfaces share a MAC")
	}
}

func TestUnderlayIdentifiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		netns, host     string
		ip              string
		wantNS, wantMAC string
	}{
		{"simulated host", "tb123456-hostA", "hostA", "10.77.0.1", "tb123456-hostA-underlay", "02:6e:0a:4d:00:01"},
		{"host's own namespace", "", "host/1", "192.168.255.254", "host_1-underlay", "02:6e:c0:a8:ff:fe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := UnderlayNamespaceName(tt.netns, tt.host); got != tt.wantNS {
				t.Errorf("UnderlayNamespaceName(%q, %q) = %q, want %q", tt.netns, tt.host, got, tt.wantNS)
			}
			if got := UnderlayMAC(netip.MustParseAddr(tt.ip)).String(); got != tt.wantMAC {
				t.Errorf("UnderlayMAC(%s) = %s, want %s", tt.ip, got, tt.wantMAC)
			}
		})
	}
	if UnderlayVNI < VNIBase+vniSpan {
		t.Errorf("UnderlayVNI %d lies in the allocated span", UnderlayVNI)
	}
}
