package wire

import (
	"fmt"
	"net/netip"
)

// Limits of the agent API.
const (
	MaxVNI     = 1<<24 - 1
	MinMTU     = 68
	MaxMTU     = 65535
	MaxTag     = 4094
	MaxPortLen = 15
)

// VXLANOverhead is what VXLAN over IPv4 (the only underlay a data IP may
// be) adds to a frame: outer IPv4 (20), UDP (8), VXLAN (8) and the inner
// Ethernet header (14). A link's MTU plus it is what the underlay must carry.
const VXLANOverhead = 50

// isName reports whether s has 1 to max characters of [A-Za-z0-9_.-] and
// of extra. A loop, not a regular expression: a declaration of thousands
// of tunnels checks three names per tunnel.
func isName(s string, max int, extra byte) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		case extra != 0 && c == extra:
		default:
			return false
		}
	}
	return true
}

func checkLab(ps *problems, field, lab string) {
	if !isName(lab, 64, 0) || lab == "." || lab == ".." {
		ps.add(field, "%q: want 1 to 64 characters of [A-Za-z0-9_.-]", lab)
	}
}

func checkNode(ps *problems, field, node string) {
	if !isName(node, 64, 0) || node == "." || node == ".." {
		ps.add(field, "%q: want 1 to 64 characters of [A-Za-z0-9_.-], not . or ..", node)
	}
}

func checkIface(ps *problems, field, iface string) {
	if !isName(iface, 15, 0) || iface == "lo" {
		ps.add(field, "%q: want 1 to 15 characters of [A-Za-z0-9_.-], not lo", iface)
	}
}

// checkLink admits the "<node>:<iface>-<node>:<iface>" names and UUIDs.
func checkLink(ps *problems, field, link string) {
	if !isName(link, 160, ':') {
		ps.add(field, "%q: want 1 to 160 characters of [A-Za-z0-9_.:-]", link)
	}
}

// CheckPortName reports what is wrong with an OVS port name, or "".
func CheckPortName(name string) string {
	if !isName(name, MaxPortLen, 0) {
		return fmt.Sprintf("%q: want 1 to %d characters of [A-Za-z0-9_.-]", name, MaxPortLen)
	}
	return ""
}

func checkPort(ps *problems, field, name string) {
	if r := CheckPortName(name); r != "" {
		ps.add(field, "%s", r)
	}
}

func checkIPv4(ps *problems, field, ip string) {
	if r := CheckUnicast(ip); r != "" {
		ps.add(field, "%s", r)
	}
}

// CheckUnicast says why ip cannot be a tunnel end or a host's data
// address, or "": it must be an IPv4 unicast address another host can
// reach, not loopback, multicast, broadcast or unspecified.
func CheckUnicast(ip string) string {
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil || !a.Is4():
		return fmt.Sprintf("%q: want an IPv4 unicast address", ip)
	case a.IsUnspecified():
		return fmt.Sprintf("%q: the unspecified address is no host's", ip)
	case a.IsLoopback():
		return fmt.Sprintf("%q: a loopback address does not reach another host", ip)
	case a.IsMulticast():
		return fmt.Sprintf("%q: a multicast address is no host's", ip)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Sprintf("%q: the broadcast address is no host's", ip)
	}
	return ""
}

// checkAddresses checks an interface's addresses: at most MaxAddresses
// distinct prefixes, each an address a node can hold.
func checkAddresses(ps *problems, field string, addrs []string) {
	if len(addrs) > MaxAddresses {
		ps.add(field, "%d addresses: want at most %d", len(addrs), MaxAddresses)
		return
	}
	seen := map[netip.Prefix]int{}
	for i, s := range addrs {
		f := fmt.Sprintf("%s[%d]", field, i)
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			ps.add(f, "%q: want an address with its prefix length, e.g. 172.20.20.2/24", s)
		case p.Addr().IsUnspecified():
			ps.add(f, "%q: the unspecified address is no interface's", s)
		case p.Addr().IsLoopback():
			ps.add(f, "%q: a loopback address belongs on lo", s)
		case p.Addr().IsMulticast():
			ps.add(f, "%q: a multicast address is a group, not an interface's", s)
		default:
			if j, dup := seen[p]; dup {
				ps.add(f, "%q: also %s[%d]", s, field, j)
			} else {
				seen[p] = i
			}
		}
	}
}

func checkTag(ps *problems, field string, tag int, zeroOK bool) {
	if (tag == 0 && !zeroOK) || tag < 0 || tag > MaxTag {
		ps.add(field, "%d: want 1 to %d", tag, MaxTag)
	}
}

func checkMTU(ps *problems, field string, mtu int) {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		ps.add(field, "%d: want 0 (default) or %d to %d", mtu, MinMTU, MaxMTU)
	}
}

// checkTunnels checks declared tunnels (DESIGN §6 rule 1). A placeholder, or
// a tunnel without addresses or VNI, needs only its lab, link and port name:
// it is protected, not built. expected_vlan 0 passes here and is reported as
// an error result for that tunnel alone.
func checkTunnels(ps *problems, tunnels []DeclaredTunnel) {
	ports := map[string]int{}
	vnis := map[int]int{}
	for i, t := range tunnels {
		f := fmt.Sprintf("tunnels[%d]", i)
		checkLab(ps, f+".lab_id", t.LabID)
		checkLink(ps, f+".link_id", t.LinkID)
		checkPort(ps, f+".port_name", t.PortName)
		if j, dup := ports[t.PortName]; dup {
			ps.add(f+".port_name", "%q: also in tunnels[%d]", t.PortName, j)
		} else {
			ports[t.PortName] = i
		}
		if t.VNI < 0 || t.VNI > MaxVNI {
			ps.add(f+".vni", "%d: want 1 to %d", t.VNI, MaxVNI)
		}
		checkTag(ps, f+".expected_vlan", t.ExpectedVLAN, true)
		checkMTU(ps, f+".mtu", t.MTU)
		if t.Protected() {
			continue
		}
		checkIPv4(ps, f+".local_ip", t.LocalIP)
		checkIPv4(ps, f+".remote_ip", t.RemoteIP)
		if j, dup := vnis[t.VNI]; dup {
			ps.add(f+".vni", "%d: also in tunnels[%d]", t.VNI, j)
		} else {
			vnis[t.VNI] = i
		}
	}
}

// checkScope checks a declaration's labs and generation.
func checkScope(ps *problems, labs []string, gen *int64) {
	for i, lab := range labs {
		checkLab(ps, fmt.Sprintf("declared_labs[%d]", i), lab)
	}
	if gen != nil && *gen < 0 {
		ps.add("generation", "%d: want 0 or more", *gen)
	}
}

// checkExec checks a node's exec commands.
func checkExec(ps *problems, field string, cmds []string) {
	if len(cmds) > 100 {
		ps.add(field, "%d commands: want at most 100", len(cmds))
	}
	for i, c := range cmds {
		if len(c) == 0 || len(c) > 4096 {
			ps.add(fmt.Sprintf("%s[%d]", field, i), "%d characters: want 1 to 4096", len(c))
		}
	}
}

// Validate checks a whole declaration (DESIGN §6 rule 1).
func (r *DeclareStateRequest) Validate() error {
	var ps problems
	checkTunnels(&ps, r.Tunnels)
	checkScope(&ps, r.DeclaredLabs, r.Generation)
	return ps.err()
}

// Validate checks every pairing.
func (r *PortDeclareRequest) Validate() error {
	var ps problems
	for i, p := range r.Pairings {
		f := fmt.Sprintf("pairings[%d]", i)
		checkLink(&ps, f+".link_name", p.LinkName)
		checkLab(&ps, f+".lab_id", p.LabID)
		checkPort(&ps, f+".port_a", p.PortA)
		checkPort(&ps, f+".port_b", p.PortB)
		if p.PortA == p.PortB {
			ps.add(f+".port_b", "%q: the same port as port_a", p.PortB)
		}
		checkTag(&ps, f+".vlan_tag", p.VLANTag, false)
	}
	return ps.err()
}

// Validate checks the whitelist's names.
func (r *ReconcilePortsRequest) Validate() error {
	var ps problems
	for i, n := range r.ValidPortNames {
		checkPort(&ps, fmt.Sprintf("valid_port_names[%d]", i), n)
	}
	return ps.err()
}

// Validate checks an attach.
func (r *AttachLinkRequest) Validate() error {
	var ps problems
	checkLab(&ps, "lab_id", r.LabID)
	checkNode(&ps, "container_name", r.ContainerName)
	checkIface(&ps, "interface_name", r.InterfaceName)
	checkLink(&ps, "link_id", r.LinkID)
	if r.VNI < 1 || r.VNI > MaxVNI {
		ps.add("vni", "%d: want 1 to %d", r.VNI, MaxVNI)
	}
	checkIPv4(&ps, "local_ip", r.LocalIP)
	checkIPv4(&ps, "remote_ip", r.RemoteIP)
	checkMTU(&ps, "tenant_mtu", r.TenantMTU)
	return ps.err()
}

// Validate checks a detach.
func (r *DetachLinkRequest) Validate() error {
	var ps problems
	checkLab(&ps, "lab_id", r.LabID)
	checkNode(&ps, "container_name", r.ContainerName)
	checkIface(&ps, "interface_name", r.InterfaceName)
	checkLink(&ps, "link_id", r.LinkID)
	return ps.err()
}

// Validate checks a same-host link.
func (r *SameHostLinkRequest) Validate() error {
	var ps problems
	checkNode(&ps, "source_node", r.SourceNode)
	checkIface(&ps, "source_interface", r.SourceInterface)
	checkNode(&ps, "target_node", r.TargetNode)
	checkIface(&ps, "target_interface", r.TargetInterface)
	if r.SourceNode == r.TargetNode && r.SourceInterface == r.TargetInterface {
		ps.add("target_interface", "%q: the same endpoint as the source", r.TargetInterface)
	}
	return ps.err()
}

// Validate checks a node.
func (r *CreateNodeRequest) Validate() error {
	var ps problems
	checkNode(&ps, "name", r.Name)
	seen := map[string]int{}
	for i, ifc := range r.Interfaces {
		f := fmt.Sprintf("interfaces[%d]", i)
		checkIface(&ps, f+".name", ifc.Name)
		if j, dup := seen[ifc.Name]; dup {
			ps.add(f+".name", "%q: also interfaces[%d]", ifc.Name, j)
		}
		seen[ifc.Name] = i
		checkMTU(&ps, f+".mtu", ifc.MTU)
	}
	checkExec(&ps, "exec", r.Exec)
	return ps.err()
}

// Validate checks a cleanup.
func (r *CleanupRequest) Validate() error {
	var ps problems
	checkLab(&ps, "lab_id", r.LabID)
	return ps.err()
}

// Validate checks a retag.
func (r *SetVLANRequest) Validate() error {
	var ps problems
	checkTag(&ps, "vlan_tag", r.VLANTag, false)
	if r.LinkID != "" {
		checkLink(&ps, "link_id", r.LinkID)
	}
	return ps.err()
}

// ValidateLab checks a lab id taken from a path.
func ValidateLab(lab string) error {
	var ps problems
	checkLab(&ps, "lab_id", lab)
	return ps.err()
}

// ValidateNode checks a node name taken from a path.
func ValidateNode(node string) error {
	var ps problems
	checkNode(&ps, "node", node)
	return ps.err()
}

// ValidatePortName checks a port name taken from a path.
func ValidatePortName(name string) error {
	var ps problems
	checkPort(&ps, "port_name", name)
	return ps.err()
}
