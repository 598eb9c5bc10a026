package agent

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/wire"
)

// nodeKey names a node on this host.
type nodeKey struct{ Lab, Node string }

func keyOf(n wire.DeclaredNode) nodeKey { return nodeKey{n.LabID, n.Name} }

// hostState is what the agent holds for its host: every node with its
// interfaces' tags, and every tunnel. Declarations, the original's per-link
// endpoints, repair and restore all converge the host to one of these.
type hostState struct {
	nodes   map[nodeKey]wire.DeclaredNode
	tunnels map[string]wire.DeclaredTunnel // by port name, never by link name (W-1)
}

func newHostState() hostState {
	return hostState{nodes: map[nodeKey]wire.DeclaredNode{}, tunnels: map[string]wire.DeclaredTunnel{}}
}

// stateOf builds a state from lists, as a declaration or the cache has them.
func stateOf(nodes []wire.DeclaredNode, tunnels []wire.DeclaredTunnel) hostState {
	s := newHostState()
	for _, n := range nodes {
		s.nodes[keyOf(n)] = n
	}
	for _, t := range tunnels {
		s.tunnels[t.PortName] = t
	}
	return s
}

// clone copies the state; a node's interfaces are copied by withTag, the
// only edit of them.
func (s hostState) clone() hostState {
	return hostState{nodes: maps.Clone(s.nodes), tunnels: maps.Clone(s.tunnels)}
}

// same reports whether s and o hold the same nodes and tunnels.
func (s hostState) same(o hostState) bool {
	return maps.Equal(s.tunnels, o.tunnels) && maps.EqualFunc(s.nodes, o.nodes, func(a, b wire.DeclaredNode) bool {
		return reflect.DeepEqual(a, b)
	})
}

// nodeList returns the nodes sorted by lab and name.
func (s hostState) nodeList() []wire.DeclaredNode {
	keys := slices.SortedFunc(maps.Keys(s.nodes), func(a, b nodeKey) int {
		if c := strings.Compare(a.Lab, b.Lab); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	out := make([]wire.DeclaredNode, len(keys))
	for i, k := range keys {
		out[i] = s.nodes[k]
	}
	return out
}

// tunnelList returns the tunnels sorted by port name.
func (s hostState) tunnelList() []wire.DeclaredTunnel {
	out := make([]wire.DeclaredTunnel, 0, len(s.tunnels))
	for _, name := range slices.Sorted(maps.Keys(s.tunnels)) {
		out = append(out, s.tunnels[name])
	}
	return out
}

// heldPort is a node interface the state holds, found by its host port.
type heldPort struct {
	key   nodeKey
	iface wire.DeclaredInterface
}

// ports indexes the state's node interfaces by host port name.
func (s hostState) ports() map[string]heldPort {
	out := map[string]heldPort{}
	for k, n := range s.nodes {
		for _, ifc := range n.Interfaces {
			out[ident.HostPortName(k.Lab, k.Node, ifc.Name)] = heldPort{key: k, iface: ifc}
		}
	}
	return out
}

// withTag sets the tag of one node interface the state holds; it reports
// false when the state holds no such interface.
func (s hostState) withTag(k nodeKey, iface string, tag int) bool {
	n, ok := s.nodes[k]
	if !ok {
		return false
	}
	i := slices.IndexFunc(n.Interfaces, func(ifc wire.DeclaredInterface) bool { return ifc.Name == iface })
	if i < 0 {
		return false
	}
	n.Interfaces = slices.Clone(n.Interfaces)
	n.Interfaces[i].VLANTag = tag
	s.nodes[k] = n
	return true
}

// tags lists every tag the state uses.
func (s hostState) tags() []int {
	var out []int
	for _, t := range s.tunnels {
		out = append(out, t.ExpectedVLAN)
	}
	for _, n := range s.nodes {
		for _, ifc := range n.Interfaces {
			out = append(out, ifc.VLANTag)
		}
	}
	return out
}

// labs returns the labs the state holds anything of.
func (s hostState) labs() map[string]bool {
	labs := map[string]bool{}
	for k := range s.nodes {
		labs[k.Lab] = true
	}
	for _, t := range s.tunnels {
		labs[t.LabID] = true
	}
	return labs
}

// dropLab removes a lab's nodes and tunnels.
func (s hostState) dropLab(lab string) {
	maps.DeleteFunc(s.nodes, func(k nodeKey, _ wire.DeclaredNode) bool { return k.Lab == lab })
	maps.DeleteFunc(s.tunnels, func(_ string, t wire.DeclaredTunnel) bool { return t.LabID == lab })
}
