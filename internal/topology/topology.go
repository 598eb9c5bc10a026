package topology

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/wire"
)

// Lab is a resolved, valid lab.
type Lab struct {
	Name  string `json:"name"`
	Nodes []Node `json:"nodes"`
	Links []Link `json:"links"`
	// Files are the files shipped with the lab, by their path relative to
	// the lab file: relative bind sources, startup-configs, env-files.
	Files map[string][]byte `json:"files,omitempty"`
	// Ignored are the keys outside nodes that netloom does not know and
	// that are not close to one it knows, by their path in the file.
	Ignored []string `json:"ignored,omitempty"`
	// Unapplied says, for each lab-wide containerlab setting netloom knows
	// and does not apply yet, what the user gets instead.
	Unapplied []string `json:"unapplied,omitempty"`
	// Mgmt is the lab's management network.
	Mgmt Mgmt `json:"mgmt"`
}

// Mgmt is a lab's management network, containerlab's mgmt block: every
// node but bridges and those with network-mode none gets eth0 on one
// segment that spans the lab's hosts, and each host an address on it.
type Mgmt struct {
	// Subnet is the IPv4 subnet the file asks for; "" lets the controller
	// take containerlab's DefaultMgmtSubnet, or the next /24 no other lab
	// has.
	Subnet string `json:"ipv4_subnet,omitempty"`
}

// DefaultMgmtSubnet is containerlab's management subnet.
const DefaultMgmtSubnet = "172.20.20.0/24"

// MgmtIface is the management interface of every node.
const MgmtIface = "eth0"

// Node is one lab device, with containerlab's defaults, kinds and groups
// merged in.
type Node struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Image string   `json:"image,omitempty"`
	Host  string   `json:"host,omitempty"` // explicit placement; empty lets the controller place it
	Exec  []string `json:"exec,omitempty"` // run inside the node once its interfaces exist
	// MgmtIPv4 is the management address the file asks for ("" for one
	// from the lab's subnet); NetworkMode none leaves the node without a
	// management interface.
	MgmtIPv4    string `json:"mgmt_ipv4,omitempty"`
	NetworkMode string `json:"network_mode,omitempty"`
	// Container settings (cmd, env, binds, …), applied to a node with an
	// image.
	wire.NodeSettings
	// Unused lists the settings the node has that no runtime applies yet
	// (startup-config, binds, …); they are kept for when one does. An image
	// is applied: the node runs as a container on a host that offers one.
	Unused []string `json:"unused,omitempty"`
}

// HasMgmt reports whether a node of kind with networkMode gets a
// management interface: all but bridges and network-mode none.
func HasMgmt(kind, networkMode string) bool { return !IsBridge(kind) && networkMode != "none" }

// Endpoint is one end of a link, "node:iface"; wire.HostNode as its node
// names an interface of the host the other end's node runs on.
type Endpoint struct {
	Node  string `json:"node"`
	Iface string `json:"interface"`
	MAC   string `json:"mac,omitempty"` // of the node interface; derived from lab, node and name when empty
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a point-to-point link between two node interfaces.
type Link struct {
	A Endpoint `json:"a"`
	B Endpoint `json:"b"`
	// MTU of both node interfaces and, across hosts, of the tunnel; 0 for
	// the default (1500 on one host; across hosts the most the underlay
	// carries after VXLAN's 50 bytes, at most 1500).
	MTU int `json:"mtu,omitempty"`
	// AllowFragmentation lets a cross-host link's MTU exceed what the
	// underlay carries: its outer packets are fragmented.
	AllowFragmentation bool `json:"allow_fragmentation,omitempty"`
}

// Name returns the link's canonical name (ident.LinkName).
func (l Link) Name() string { return ident.LinkName(l.A.String(), l.B.String()) }

// Problem is one thing wrong with a lab, at a file position when it came
// from a file (Line 0 otherwise). It crosses to the CLI as it is.
type Problem = wire.Problem

// Error lists every problem of a lab, those with a position in file order.
type Error struct {
	File     string
	Problems []Problem
}

// Error gives each problem on its own line, "file:line:col: field: reason".
func (e *Error) Error() string {
	return wire.FormatProblems("invalid lab", e.File, e.Problems)
}

// inFileOrder sorts problems by their position; those without one keep
// their order, after the others.
func inFileOrder(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		switch {
		case a.Line == 0 || b.Line == 0:
			return cmp.Compare(b.Line, a.Line) // the one without a position goes after
		case a.Line != b.Line:
			return cmp.Compare(a.Line, b.Line)
		}
		return cmp.Compare(a.Column, b.Column)
	})
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ifaceRule is the rule of node interface names, told with each break of it.
const ifaceRule = "Linux names are 1 to 15 characters of A-Z a-z 0-9 _ . -"

// ifaceProblem says which rule a node interface name breaks, or "".
func ifaceProblem(name string) string {
	if name == "" {
		return "an empty interface name (" + ifaceRule + ")"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return fmt.Sprintf("%q is not allowed in an interface name (%s)", string(r), ifaceRule)
		}
	}
	switch {
	case len(name) > 15:
		return fmt.Sprintf("%d characters, at most 15 in an interface name (%s)", len(name), ifaceRule)
	case name == "lo":
		return "the loopback interface cannot be a link's"
	case name == MgmtIface:
		return "the management interface; link interfaces start at eth1"
	}
	return ""
}

// hostIfaceProblem says which rule the name of a host endpoint's interface
// breaks, or "".
func hostIfaceProblem(name string) string {
	if name == MgmtIface {
		return "" // a host's eth0 is rarely free, and the agent says so, but the name is valid
	}
	return ifaceProblem(name)
}

// mgmtProblems checks the management subnet and the nodes' addresses in it.
func (l Lab) mgmtProblems(pos map[string][2]int) []Problem {
	var ps []Problem
	subnet, err := MgmtSubnet(cmp.Or(l.Mgmt.Subnet, DefaultMgmtSubnet))
	if err != nil {
		ps = append(ps, at(pos, "mgmt.ipv4-subnet", Problem{Field: "mgmt.ipv4-subnet", Reason: fmt.Sprintf("%q: %v", l.Mgmt.Subnet, err)}))
	}
	addrs := map[netip.Addr]string{}
	for _, n := range l.Nodes {
		if n.MgmtIPv4 == "" {
			continue
		}
		f := "topology.nodes." + n.Name + ".mgmt-ipv4"
		problem := func(format string, args ...any) {
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: fmt.Sprintf("%q: ", n.MgmtIPv4) + fmt.Sprintf(format, args...)}))
		}
		a, perr := netip.ParseAddr(n.MgmtIPv4)
		switch {
		case perr != nil || !a.Is4():
			problem("want an IPv4 address such as 172.20.20.2")
		case n.NetworkMode == "none":
			problem("the node has network-mode none: no management interface")
		case err != nil:
		case !subnet.Contains(a):
			problem("not in the management subnet %s", subnet)
		case a == subnet.Addr() || a == LastAddr(subnet):
			problem("the subnet's network or broadcast address")
		case addrs[a] != "":
			problem("also the address of node %s", addrs[a])
		default:
			addrs[a] = n.Name
		}
	}
	return ps
}

// MgmtSubnet parses a management subnet: an IPv4 network with room for
// nodes and hosts.
func MgmtSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !p.Addr().Is4():
		return p, errors.New("want an IPv4 subnet such as 172.20.20.0/24")
	case p != p.Masked():
		return p, fmt.Errorf("host bits set: the subnet is %s", p.Masked())
	case p.Bits() < 8 || p.Bits() > 28:
		return p, errors.New("want a prefix length of 8 to 28")
	}
	return p, nil
}

// LastAddr is a subnet's broadcast address.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// raw structs keep the YAML nodes so that problems carry positions.
type rawFile struct {
	Name     yaml.Node   `yaml:"name"`
	Mgmt     *rawMgmt    `yaml:"mgmt"`
	Topology rawTopology `yaml:"topology"`
}

type rawMgmt struct {
	IPv4Subnet string         `yaml:"ipv4-subnet"`
	Rest       map[string]any `yaml:",inline"`
}

type rawTopology struct {
	Defaults rawNode            `yaml:"defaults"`
	Kinds    map[string]rawNode `yaml:"kinds"`
	Groups   map[string]rawNode `yaml:"groups"`
	Nodes    map[string]rawNode `yaml:"nodes"`
	Links    []rawLink          `yaml:"links"`
}

// rawNode holds the settings netloom uses, and every other key in Rest so
// that a containerlab file loads unchanged and netloom can say what it did
// not apply.
type rawNode struct {
	Kind          string            `yaml:"kind"`
	Image         string            `yaml:"image"`
	Group         string            `yaml:"group"`
	Host          string            `yaml:"host"`
	Exec          []string          `yaml:"exec"`
	Cmd           string            `yaml:"cmd"`
	Entrypoint    string            `yaml:"entrypoint"`
	Env           map[string]string `yaml:"env"`
	EnvFiles      []string          `yaml:"env-files"`
	Labels        map[string]string `yaml:"labels"`
	User          string            `yaml:"user"`
	Binds         []string          `yaml:"binds"`
	Ports         []string          `yaml:"ports"`
	CapAdd        []string          `yaml:"cap-add"`
	Sysctls       map[string]string `yaml:"sysctls"`
	Memory        string            `yaml:"memory"`
	CPU           float64           `yaml:"cpu"`
	StartupConfig string            `yaml:"startup-config"`
	Extras        rawExtras         `yaml:"extras"`
	MgmtIPv4      string            `yaml:"mgmt-ipv4"`
	MgmtIPv4Old   string            `yaml:"mgmt_ipv4"` // containerlab's older spelling
	NetworkMode   string            `yaml:"network-mode"`
	Rest          map[string]any    `yaml:",inline"`
}

// rawExtras is containerlab's per-kind extras; netloom applies FRR's.
type rawExtras struct {
	FRR struct {
		Daemons []string `yaml:"daemons"`
	} `yaml:"frr"`
	Rest map[string]any `yaml:",inline"`
}

// rawLink is a link in containerlab's brief form (endpoints: ["a:e1",
// "b:e1"]) or its extended form (type: veth, endpoints: [{node, interface}]).
type rawLink struct {
	Type               string      `yaml:"type"`
	Endpoints          []yaml.Node `yaml:"endpoints"`
	MTU                int         `yaml:"mtu"`
	AllowFragmentation bool        `yaml:"allow-fragmentation"`
}

// Decode reads a lab file. file names it in errors.
func Decode(file string, data []byte) (Lab, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return Lab{}, &Error{File: file, Problems: []Problem{{Line: yamlLine(msg), Field: "file", Reason: lineRE.ReplaceAllString(msg, "")}}}
	}
	ps, ignored := checkKeys(&doc)
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			for _, e := range te.Errors {
				ps = append(ps, Problem{Line: yamlLine(e), Field: "file", Reason: typeProblem(lineRE.ReplaceAllString(e, ""))})
			}
		} else {
			ps = append(ps, Problem{Field: "file", Reason: err.Error()})
		}
		inFileOrder(ps)
		return Lab{}, &Error{File: file, Problems: ps}
	}
	pos := positions(&doc)
	lab := Lab{Name: raw.Name.Value, Ignored: ignored}
	if raw.Mgmt != nil {
		lab.Mgmt.Subnet = raw.Mgmt.IPv4Subnet
		for _, k := range slices.Sorted(maps.Keys(raw.Mgmt.Rest)) {
			if mgmtKeys[k] {
				lab.Unapplied = append(lab.Unapplied, fmt.Sprintf("mgmt.%s: not applied: each lab has its own management segment", k))
			}
		}
	}
	var inFile []int // of each link kept, its index in the file
	topo := raw.Topology
	for _, name := range slices.Sorted(maps.Keys(topo.Nodes)) {
		rn := topo.Nodes[name]
		if rn.Group != "" {
			if _, ok := topo.Groups[rn.Group]; !ok {
				f := "topology.nodes." + name + ".group"
				ps = append(ps, at(pos, f, Problem{Field: f, Reason: fmt.Sprintf("%q: no such group", rn.Group)}))
			}
		}
		lab.Nodes = append(lab.Nodes, merge(name, topo, rn))
	}
	for i, rl := range topo.Links {
		field := fmt.Sprintf("topology.links[%d].endpoints", i)
		if rl.Type != "" && rl.Type != "veth" {
			f := fmt.Sprintf("topology.links[%d].type", i)
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: fmt.Sprintf("%q: only veth links (node to node) are supported", rl.Type)}))
			continue
		}
		if len(rl.Endpoints) != 2 {
			// At the link when it has no endpoints key to point at.
			p := at(pos, fmt.Sprintf("topology.links[%d]", i), Problem{Field: field, Reason: fmt.Sprintf("%d endpoints: want 2", len(rl.Endpoints))})
			ps = append(ps, at(pos, field, p))
			continue
		}
		var eps [2]Endpoint
		ok := true
		for j := range rl.Endpoints {
			ef := fmt.Sprintf("%s[%d]", field, j)
			e, err := endpoint(&rl.Endpoints[j])
			if err != "" {
				ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: err}))
				ok = false
				continue
			}
			eps[j] = e
		}
		if ok {
			lab.Links = append(lab.Links, Link{A: eps[0], B: eps[1], MTU: rl.MTU, AllowFragmentation: rl.AllowFragmentation})
			inFile = append(inFile, i)
		}
	}
	if err := lab.validate(ps, pos, inFile); err != nil {
		err.File = file
		inFileOrder(err.Problems)
		return Lab{}, err
	}
	return lab, nil
}

// Validate checks a lab given as JSON rather than a file.
func (l Lab) Validate() error {
	if err := l.validate(nil, nil, nil); err != nil {
		return err
	}
	return nil
}

// validate adds the lab's problems to ps, at their positions in pos; a
// link is named by its index in the file, inFile[i] for l.Links[i] when
// Decode left out links it could not read.
func (l Lab) validate(ps []Problem, pos map[string][2]int, inFile []int) *Error {
	if !nameRE.MatchString(l.Name) || l.Name == "." || l.Name == ".." {
		// A lab's name is a path element of the API and of the agents'
		// state directories.
		ps = append(ps, at(pos, "name", Problem{Field: "name", Reason: fmt.Sprintf("%q: want 1 to 64 characters of [A-Za-z0-9_.-], not . or ..", l.Name)}))
	}
	if len(l.Nodes) == 0 {
		ps = append(ps, at(pos, "topology.nodes", Problem{Field: "topology.nodes", Reason: "no nodes"}))
	}
	nodes := map[string]bool{}
	bridge := map[string]bool{}
	ps = append(ps, l.mgmtProblems(pos)...)
	for _, n := range l.Nodes {
		f := "topology.nodes." + n.Name
		bridge[n.Name] = IsBridge(n.Kind)
		switch {
		case !nameRE.MatchString(n.Name) || n.Name == "." || n.Name == "..":
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: "the node name: want 1 to 64 characters of [A-Za-z0-9_.-], not . or .."}))
		case n.Name == wire.HostNode:
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: "the node name host is reserved: host:IFACE endpoints name the host itself"}))
		}
		if nodes[n.Name] {
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: "duplicate node"}))
		}
		nodes[n.Name] = true
		if n.Host != "" && !nameRE.MatchString(n.Host) {
			ps = append(ps, at(pos, f+".host", Problem{Field: f + ".host", Reason: fmt.Sprintf("%q: not a host name", n.Host)}))
		}
		ps = append(ps, n.settingsProblems(pos)...)
	}
	used := map[string]int{}
	type named struct {
		i    int
		ends [2]string
	}
	names := map[string]named{}
	macs := map[string]string{}
	for li, link := range l.Links {
		i := li
		if inFile != nil {
			i = inFile[li]
		}
		f := fmt.Sprintf("topology.links[%d].endpoints", i)
		for j, e := range []Endpoint{link.A, link.B} {
			ef := fmt.Sprintf("%s[%d]", f, j)
			switch {
			case e.Node == wire.HostNode:
				if r := hostIfaceProblem(e.Iface); r != "" {
					ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%q: %s", e.Iface, r)}))
				}
			case !nodes[e.Node] && specialEndpoints[e.Node] != "":
				ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%q: %s", e.String(), specialEndpoints[e.Node])}))
			case !nodes[e.Node]:
				ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%q: no such node", e.Node)}))
			default:
				if r := ifaceProblem(e.Iface); r != "" {
					ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%q: %s", e.Iface, r)}))
				}
			}
			if k, dup := used[e.String()]; dup {
				ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%s is also used by topology.links[%d]", e, k)}))
			}
			used[e.String()] = i
		}
		// A link's name joins its ends with "-", which names may hold too:
		// a:p ↔ x-b:q and a:p-x ↔ b:q are both a:p-x-b:q.
		ends := [2]string{link.A.String(), link.B.String()}
		slices.Sort(ends[:])
		if k, dup := names[link.Name()]; dup && k.ends != ends {
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: fmt.Sprintf("its name %s is also that of topology.links[%d] (%s ↔ %s): rename a node or an interface",
				link.Name(), k.i, k.ends[0], k.ends[1])}))
		}
		names[link.Name()] = named{i, ends}
		switch {
		case link.A.String() == link.B.String():
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: "a link from an interface to itself"}))
		case link.A.Node == wire.HostNode && link.B.Node == wire.HostNode:
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: "a link between two host endpoints: one end must be a node's"}))
		}
		if bridge[link.A.Node] && bridge[link.B.Node] {
			ps = append(ps, at(pos, f, Problem{Field: f, Reason: fmt.Sprintf("a link between bridges %s and %s: a bridge links to nodes, and two bridges would be one segment", link.A.Node, link.B.Node)}))
		}
		for j, e := range []Endpoint{link.A, link.B} {
			if e.MAC == "" {
				continue
			}
			ef := fmt.Sprintf("%s[%d].mac", f, j)
			if r := checkMAC(e.MAC); r != "" {
				ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%q: %s", e.MAC, r)}))
			} else if k, dup := macs[strings.ToLower(e.MAC)]; dup {
				ps = append(ps, at(pos, ef, Problem{Field: ef, Reason: fmt.Sprintf("%s is also the MAC of %s", e.MAC, k)}))
			} else {
				macs[strings.ToLower(e.MAC)] = e.String()
			}
		}
		if link.MTU != 0 && (link.MTU < wire.MinMTU || link.MTU > MaxMTU) {
			mf := fmt.Sprintf("topology.links[%d].mtu", i)
			ps = append(ps, at(pos, mf, Problem{Field: mf, Reason: fmt.Sprintf("%d: want %d to %d", link.MTU, wire.MinMTU, MaxMTU)}))
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return &Error{Problems: ps}
}

// specialEndpoints are containerlab's endpoints that are not a node's,
// with what netloom offers instead until it supports them.
var specialEndpoints = map[string]string{
	"macvlan":  "containerlab's macvlan endpoints (on an interface of the node's host) are not supported yet",
	"macvtap":  "containerlab's macvtap endpoints (on an interface of the node's host) are not supported yet",
	"mgmt-net": "containerlab's mgmt-net endpoints are not supported: every node has eth0 on the lab's management network already",
}

// MaxMTU is the largest link MTU: jumbo frames with room for VXLAN.
const MaxMTU = 9216

// checkMAC says what is wrong with a node interface's MAC address, or "".
func checkMAC(s string) string {
	hw, err := net.ParseMAC(s)
	switch {
	case err != nil || len(hw) != 6:
		return "want a MAC address such as 02:00:00:00:00:01"
	case hw[0]&1 != 0:
		return "a multicast address cannot be an interface's"
	case bytes.Equal(hw, make(net.HardwareAddr, 6)):
		return "the zero address cannot be an interface's"
	}
	return ""
}

// positions maps dotted field paths to the line and column of their value.
func positions(doc *yaml.Node) map[string][2]int {
	pos := map[string][2]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				pos[p] = [2]int{v.Line, v.Column}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				pos[p] = [2]int{c.Line, c.Column}
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return pos
}

func at(pos map[string][2]int, path string, p Problem) Problem {
	if lc, ok := pos[path]; ok {
		p.Line, p.Column = lc[0], lc[1]
	}
	return p
}

// merge resolves a node the way containerlab does: its own settings over
// its group's, over its kind's, over the defaults.
func merge(name string, topo rawTopology, rn rawNode) Node {
	group := topo.Groups[rn.Group]
	kind := first(rn.Kind, group.Kind, topo.Defaults.Kind, "linux")
	kd := topo.Kinds[kind]
	layers := []rawNode{rn, group, kd, topo.Defaults} // most specific first
	n := Node{Name: name, Kind: kind}
	c := &wire.Container{}
	for _, l := range layers {
		n.Image = first(n.Image, l.Image)
		n.Host = first(n.Host, l.Host)
		if n.Exec == nil && l.Exec != nil {
			n.Exec = l.Exec
		}
		c.Cmd = first(c.Cmd, l.Cmd)
		c.Entrypoint = first(c.Entrypoint, l.Entrypoint)
		c.User = first(c.User, l.User)
		c.Memory = first(c.Memory, l.Memory)
		if c.CPU == 0 {
			c.CPU = l.CPU
		}
		n.StartupConfig = first(n.StartupConfig, l.StartupConfig)
		n.MgmtIPv4 = first(n.MgmtIPv4, l.MgmtIPv4, l.MgmtIPv4Old)
		n.NetworkMode = first(n.NetworkMode, l.NetworkMode)
		if n.EnvFiles == nil {
			n.EnvFiles = l.EnvFiles
		}
		if n.FRRDaemons == nil {
			n.FRRDaemons = l.Extras.FRR.Daemons
		}
	}
	// Maps and lists add up across the layers, the most specific entry
	// winning, as containerlab merges them.
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		c.Env = mergeMap(c.Env, l.Env)
		c.Labels = mergeMap(c.Labels, l.Labels)
		c.Sysctls = mergeMap(c.Sysctls, l.Sysctls)
		c.Binds = mergeBinds(c.Binds, l.Binds)
		c.Ports = union(c.Ports, l.Ports)
		c.CapAdd = union(c.CapAdd, l.CapAdd)
	}
	if !c.IsZero() {
		n.Container = c
	}
	unused := map[string]bool{}
	if !knownKinds[kind] {
		unused["kind "+kind] = true
	}
	for _, l := range layers {
		for k := range l.Rest {
			if knownNodeKey(k) {
				unused[k] = true
			} else {
				unused["unknown key "+k] = true
			}
		}
		for k := range l.Extras.Rest {
			unused["extras."+k] = true
		}
	}
	if n.Image == "" {
		for _, k := range n.settingNames() {
			unused[k+" (no image)"] = true
		}
	}
	if IsBridge(kind) && len(n.Exec) > 0 {
		unused["exec of kind "+kind] = true // a bridge has no namespace to run it in
	}
	switch {
	case n.NetworkMode != "" && n.NetworkMode != "none":
		unused["network-mode "+n.NetworkMode] = true // the node gets its own namespace, with eth0 on the management network
		n.NetworkMode = ""
	case IsBridge(kind) && n.MgmtIPv4 != "":
		unused["mgmt-ipv4 of kind "+kind] = true // a bridge has no management interface
		n.MgmtIPv4 = ""
	}
	if n.StartupConfig != "" && kind != "frr" {
		unused["startup-config of kind "+kind] = true
	}
	n.Unused = slices.Sorted(maps.Keys(unused))
	return n
}

// knownKinds are the kinds netloom applies; others run as linux nodes.
var knownKinds = map[string]bool{"linux": true, "frr": true, "bridge": true, "ovs-bridge": true}

// IsBridge reports whether a node of kind is a shared segment rather than
// a device: every link to it joins one segment, and no runtime node is
// made for it. containerlab's bridge is a Linux bridge on the host and its
// ovs-bridge an OVS bridge; netloom makes both one tag on the OVS bridge of
// the node's host.
func IsBridge(kind string) bool { return kind == "bridge" || kind == "ovs-bridge" }

func mergeMap(into, from map[string]string) map[string]string {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		into = map[string]string{}
	}
	maps.Copy(into, from)
	return into
}

func union(into, from []string) []string {
	for _, v := range from {
		if !slices.Contains(into, v) {
			into = append(into, v)
		}
	}
	return into
}

// mergeBinds adds binds, a later one replacing an earlier one of the same
// target.
func mergeBinds(into, from []string) []string {
	for _, b := range from {
		target := b
		if pb, err := wire.ParseBind(b); err == nil {
			target = pb.Target
		}
		into = slices.DeleteFunc(into, func(o string) bool {
			po, err := wire.ParseBind(o)
			return o == b || err == nil && po.Target == target
		})
		into = append(into, b)
	}
	return into
}

// endpoint reads "node:iface" or {node: …, interface: …}.
func endpoint(n *yaml.Node) (Endpoint, string) {
	switch n.Kind {
	case yaml.ScalarNode:
		node, iface, found := strings.Cut(n.Value, ":")
		if !found {
			return Endpoint{}, fmt.Sprintf("%q: want node:interface", n.Value)
		}
		return Endpoint{Node: node, Iface: iface}, ""
	case yaml.MappingNode:
		var e struct {
			Node      string `yaml:"node"`
			Interface string `yaml:"interface"`
			MAC       string `yaml:"mac"`
		}
		if err := n.Decode(&e); err != nil || e.Node == "" || e.Interface == "" {
			return Endpoint{}, "want {node: …, interface: …, mac: …}"
		}
		return Endpoint{Node: e.Node, Iface: e.Interface, MAC: e.MAC}, ""
	}
	return Endpoint{}, "want node:interface"
}

// Warnings says, once per setting, what no runtime applies yet.
func (l Lab) Warnings() []string {
	nodes := map[string][]string{}
	for _, n := range l.Nodes {
		for _, u := range n.Unused {
			nodes[u] = append(nodes[u], n.Name)
		}
	}
	var out []string
	for _, u := range slices.Sorted(maps.Keys(nodes)) {
		out = append(out, fmt.Sprintf("%s (nodes %s): not applied", u, strings.Join(nodes[u], ", ")))
	}
	for _, k := range l.Ignored {
		out = append(out, fmt.Sprintf("unknown key %s: ignored", k))
	}
	return append(out, l.Unapplied...)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// lineRE finds the line in yaml's messages, "line 5: cannot unmarshal …",
// which a Problem gives as its position instead.
var lineRE = regexp.MustCompile(`^line (\d+): `)

// typeErrRE reads yaml's type errors, "cannot unmarshal !!str `lots` into
// float64", whose Go type names mean nothing to the lab file's author.
var typeErrRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")

// typeProblem words a yaml type error in the lab file's terms: what was
// found and what is wanted.
func typeProblem(msg string) string {
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := "another type"
	switch t := m[3]; {
	case strings.HasPrefix(t, "[]"):
		want = "a list"
	case strings.HasPrefix(t, "map[") || strings.Contains(t, "."):
		want = "a mapping" // a map, or one of the structs a file decodes into
	case t == "string":
		want = "a string"
	case t == "bool":
		want = "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint") || strings.HasPrefix(t, "float"):
		want = "a number"
	}
	if m[2] != "" {
		return fmt.Sprintf("%q: want %s", m[2], want)
	}
	found := map[string]string{"seq": "a list", "map": "a mapping"}[m[1]]
	return fmt.Sprintf("%s: want %s", cmp.Or(found, "a value"), want)
}

func yamlLine(msg string) int {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscanf(m[1], "%d", &n)
	return n
}
