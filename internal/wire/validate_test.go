package wire

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func fields(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var f []string
	for _, p := range ve.Problems {
		f = append(f, p.Field)
	}
	return f
}

func good() DeclaredTunnel {
	return DeclaredTunnel{LinkID: "R1:eth1-R2:eth1", LabID: "lab-1", VNI: 4413936, LocalIP: "10.77.0.1",
		RemoteIP: "10.77.0.2", ExpectedVLAN: 2051, PortName: "vxlan-83debe08", MTU: 1450}
}

func TestValidateDeclareState(t *testing.T) {
	t.Parallel()
	mod := func(f func(*DeclaredTunnel)) DeclaredTunnel { t := good(); f(&t); return t }
	neg := int64(-1)
	tests := []struct {
		name string
		req  DeclareStateRequest
		want []string
	}{
		{"valid", DeclareStateRequest{Tunnels: []DeclaredTunnel{good()}, DeclaredLabs: []string{"lab-1"}}, nil},
		{"empty", DeclareStateRequest{}, nil},
		{"vni too big", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.VNI = 1 << 24 })}}, []string{"tunnels[0].vni"}},
		{"bad ips", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.LocalIP = "::1"; t.RemoteIP = "x" })}}, []string{"tunnels[0].local_ip", "tunnels[0].remote_ip"}},
		{"loopback, broadcast and multicast are no host's", DeclareStateRequest{Tunnels: []DeclaredTunnel{
			mod(func(t *DeclaredTunnel) { t.RemoteIP = "127.0.0.1" }), mod(func(t *DeclaredTunnel) { t.RemoteIP = "255.255.255.255"; t.PortName = "vxlan-2"; t.VNI = 6 }),
			mod(func(t *DeclaredTunnel) { t.RemoteIP = "224.0.0.1"; t.PortName = "vxlan-3"; t.VNI = 7 })}},
			[]string{"tunnels[0].remote_ip", "tunnels[1].remote_ip", "tunnels[2].remote_ip"}},
		{"long port name", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.PortName = "vxlan-0123456789" })}}, []string{"tunnels[0].port_name"}},
		{"shell in port name", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.PortName = "a;rm -rf" })}}, []string{"tunnels[0].port_name"}},
		{"tag and mtu", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.ExpectedVLAN = 4095; t.MTU = 67 })}}, []string{"tunnels[0].expected_vlan", "tunnels[0].mtu"}},
		{"expected_vlan 0 passes, reported per tunnel", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.ExpectedVLAN = 0 })}}, nil},
		{"duplicates", DeclareStateRequest{Tunnels: []DeclaredTunnel{good(), good()}}, []string{"tunnels[1].port_name", "tunnels[1].vni"}},
		{"placeholder needs no addresses", DeclareStateRequest{Tunnels: []DeclaredTunnel{mod(func(t *DeclaredTunnel) { t.Placeholder = true; t.LocalIP = ""; t.VNI = 0 })}}, nil},
		{"path traversal lab", DeclareStateRequest{DeclaredLabs: []string{"../etc"}}, []string{"declared_labs[0]"}},
		{"negative generation", DeclareStateRequest{Generation: &neg}, []string{"generation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fields(tt.req.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("problems in %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateOthers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    interface{ Validate() error }
		want []string
	}{
		{"pairing", &PortDeclareRequest{Pairings: []PortPairing{{LinkName: "a:eth1-b:eth1", LabID: "l", PortA: "p", PortB: "p", VLANTag: 0}}}, []string{"pairings[0].port_b", "pairings[0].vlan_tag"}},
		{"attach", &AttachLinkRequest{LabID: "l", ContainerName: "r1", InterfaceName: "lo", VNI: 0, LocalIP: "10.0.0.1", RemoteIP: "10.0.0.2", LinkID: "x"}, []string{"interface_name", "vni"}},
		{"detach", &DetachLinkRequest{LabID: "", ContainerName: "r1", InterfaceName: "eth1", LinkID: "a b"}, []string{"lab_id", "link_id"}},
		{"same-host", &SameHostLinkRequest{SourceNode: "r1", SourceInterface: "eth1", TargetNode: "r1", TargetInterface: "eth1"}, []string{"target_interface"}},
		{"node", &CreateNodeRequest{Name: "r1", Interfaces: []NodeInterface{{Name: "eth1"}, {Name: "eth1"}}}, []string{"interfaces[1].name"}},
		{"whitelist", &ReconcilePortsRequest{ValidPortNames: []string{"ok", "not ok"}}, []string{"valid_port_names[1]"}},
		{"vlan", &SetVLANRequest{VLANTag: -1}, []string{"vlan_tag"}},
		{"cleanup", &CleanupRequest{LabID: "a/b"}, []string{"lab_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fields(tt.v.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("problems in %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzDeclareState decodes and validates arbitrary bodies: no panic, and a
// request that passes has only well-formed tunnels.
func FuzzDeclareState(f *testing.F) {
	b, _ := json.Marshal(DeclareStateRequest{Tunnels: []DeclaredTunnel{good()}})
	f.Add(b)
	f.Add([]byte(`{"tunnels":[{"vni":-1,"port_name":""}],"generation":-5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req DeclareStateRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		if req.Validate() != nil {
			return
		}
		for _, tn := range req.Tunnels {
			if CheckPortName(tn.PortName) != "" || tn.VNI < 0 || tn.VNI > MaxVNI || tn.ExpectedVLAN < 0 || tn.ExpectedVLAN > MaxTag {
				t.Fatalf("accepted %+v", tn)
			}
		}
	})
}

// TestValidateAddresses: an interface's addresses are prefixes a node's
// interface can hold, each named by its place when it is not.
func TestValidateAddresses(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxAddresses+1)
	for i := range many {
		many[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24).String()
	}
	tests := []struct {
		name  string
		addrs []string
		want  []string
	}{
		{"none", nil, nil},
		{"ipv4 and ipv6", []string{"172.20.20.2/24", "2001:db8::2/64", "fe80::1/64"}, nil},
		{"the most", many[:MaxAddresses], nil},
		{"an address without its length", []string{"172.20.20.2"}, []string{"nodes[0].interfaces[1].addresses[0]"}},
		{"not an address", []string{"172.20.20.2/24", "eth0/24", "10.0.0.1/33"}, []string{"nodes[0].interfaces[1].addresses[1]", "nodes[0].interfaces[1].addresses[2]"}},
		{"unspecified, loopback, multicast", []string{"0.0.0.0/0", "::/0", "127.0.0.2/8", "::1/128", "224.0.0.5/24", "ff02::1/64"},
			[]string{"nodes[0].interfaces[1].addresses[0]", "nodes[0].interfaces[1].addresses[1]", "nodes[0].interfaces[1].addresses[2]",
				"nodes[0].interfaces[1].addresses[3]", "nodes[0].interfaces[1].addresses[4]", "nodes[0].interfaces[1].addresses[5]"}},
		{"duplicate", []string{"172.20.20.2/24", "172.20.20.2/24"}, []string{"nodes[0].interfaces[1].addresses[1]"}},
		{"too many", many, []string{"nodes[0].interfaces[1].addresses"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := HostDeclaration{Nodes: []DeclaredNode{{LabID: "l", Name: "r1", Interfaces: []DeclaredInterface{
				{Name: "eth0", VLANTag: 100}, {Name: "eth1", VLANTag: 100, Addresses: tt.addrs}}}}}
			if got := fields(req.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("problems in %v, want %v (%v)", got, tt.want, req.Validate())
			}
		})
	}
}

func TestProblemsCapped(t *testing.T) {
	t.Parallel()
	req := DeclareStateRequest{}
	for range 500 {
		req.Tunnels = append(req.Tunnels, good())
	}
	var ve *ValidationError
	if err := req.Validate(); !errors.As(err, &ve) || len(ve.Problems) != maxProblems+1 ||
		ve.Problems[maxProblems].Reason != "898 more problems not listed" {
		t.Fatalf("problems %d, last %+v", len(ve.Problems), ve.Problems[len(ve.Problems)-1])
	}
}

// fuzzValidate decodes arbitrary bodies into a request type and validates
// them: whatever the bytes, no panic.
func fuzzValidate[T any, P interface {
	*T
	Validate() error
}](f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req T
		if json.Unmarshal(body, &req) != nil {
			return
		}
		_ = P(&req).Validate()
	})
}

func FuzzPortDeclare(f *testing.F) {
	fuzzValidate[PortDeclareRequest](f, `{"pairings":[{"link_name":"a:eth1-b:eth1","lab_id":"l","port_a":"p1","port_b":"p2","vlan_tag":100}]}`)
}

func FuzzAttach(f *testing.F) {
	fuzzValidate[AttachLinkRequest](f, `{"lab_id":"l","container_name":"r1","interface_name":"eth1","vni":5,"local_ip":"10.0.0.1","remote_ip":"10.0.0.2","link_id":"a:e1-b:e1"}`)
}

func FuzzDetach(f *testing.F) {
	fuzzValidate[DetachLinkRequest](f, `{"lab_id":"l","container_name":"r1","interface_name":"eth1","link_id":"a:e1-b:e1"}`)
}

// FuzzHostDeclaration decodes and validates arbitrary host declarations:
// no panic, and one that passes names only well-formed, tagged interfaces.
func FuzzHostDeclaration(f *testing.F) {
	b, _ := json.Marshal(HostDeclaration{Nodes: []DeclaredNode{{LabID: "l", Name: "r1", Exec: []string{"true"},
		Interfaces: []DeclaredInterface{{Name: "eth1", VLANTag: 2100, MTU: 1450, Addresses: []string{"172.20.20.2/24", "2001:db8::2/64"}}}}},
		Tunnels: []DeclaredTunnel{good()}})
	f.Add(b)
	f.Add([]byte(`{"nodes":[{"lab_id":"../x","name":"","interfaces":[{"name":"lo","vlan_tag":0}]}],"generation":-1}`))
	f.Add([]byte(`{"generation":3,"same_as":"` + strings.Repeat("0f", 32) + `","answer_digest":"` + strings.Repeat("a", 64) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req HostDeclaration
		if json.Unmarshal(body, &req) != nil || req.Validate() != nil {
			return
		}
		if req.SameAs != "" && (req.Generation == nil || len(req.Nodes)+len(req.Tunnels)+len(req.DeclaredLabs) > 0 || req.Digest != "") {
			t.Fatalf("accepted a conditional declaration with content or without a generation: %+v", req)
		}
		for _, n := range req.Nodes {
			for _, ifc := range n.Interfaces {
				if ifc.VLANTag < 1 || ifc.VLANTag > MaxTag || ifc.Name == "" || ifc.Name == "lo" || len(ifc.Name) > 15 {
					t.Fatalf("accepted %+v of %s", ifc, n.Name)
				}
				for _, a := range ifc.Addresses {
					if p, err := netip.ParsePrefix(a); err != nil || p.Addr().IsUnspecified() || p.Addr().IsLoopback() || p.Addr().IsMulticast() {
						t.Fatalf("accepted address %q of %s:%s", a, n.Name, ifc.Name)
					}
				}
			}
		}
	})
}

// TestIsName holds the name check to the character class and lengths it
// replaced: ^[A-Za-z0-9_.-]{1,max}$, with one extra character.
func TestIsName(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		s     string
		max   int
		extra byte
		want  bool
	}{
		{"", 64, 0, false},
		{"r1", 64, 0, true},
		{"A-z_0.9", 64, 0, true},
		{long, 64, 0, true},
		{long + "a", 64, 0, false},
		{"r1:eth1-r2:eth1", 160, ':', true},
		{"r1:eth1", 64, 0, false},
		{"a b", 64, 0, false},
		{"é", 64, 0, false},
		{"a/b", 64, 0, false},
		{"a\x00", 64, ':', false},
	}
	for _, tt := range tests {
		if got := isName(tt.s, tt.max, tt.extra); got != tt.want {
			t.Errorf("isName(%q, %d, %q) = %v, want %v", tt.s, tt.max, tt.extra, got, tt.want)
		}
	}
}
