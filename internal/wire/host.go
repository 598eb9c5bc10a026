package wire

import (
	"fmt"
	"net"
)

// StatusRemoved is the result of an object a declaration removed.
const StatusRemoved = "removed"

// HostDeclaration is everything netloom wants on one host (new, DESIGN §11):
// its nodes with their interfaces' tags and MTUs, and its tunnels, under one
// generation. POST /host/declare-state.
//
// The agent converges the host to it in one observe, plan, apply: missing
// nodes are made (their exec commands run then, once), interfaces are made
// and put on the bridge with their tags, tunnels are made or fixed, and every
// owned node, node port and tunnel of a lab in scope that is not declared is
// removed. The scope is DeclaredLabs plus the labs of the declared nodes and
// tunnels; what belongs to other labs is left as it is.
type HostDeclaration struct {
	Nodes        []DeclaredNode   `json:"nodes"`
	Tunnels      []DeclaredTunnel `json:"tunnels"`
	DeclaredLabs []string         `json:"declared_labs"`
	// Generation fences stale controllers as in DeclareStateRequest.
	Generation *int64 `json:"generation,omitempty"`
}

// DeclaredNode is one node as the controller wants it on this host.
type DeclaredNode struct {
	LabID string `json:"lab_id"`
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Image string `json:"image,omitempty"`
	// Exec runs inside the node when it is made, not on every declaration.
	Exec       []string            `json:"exec,omitempty"`
	Interfaces []DeclaredInterface `json:"interfaces"`
	// Container is what a container runtime applies beyond the image, and
	// Files are the shipped files its relative binds name (new).
	Container *Container `json:"container,omitempty"`
	Files     []File     `json:"files,omitempty"`
}

// DeclaredInterface is one node interface: its name inside the node, the
// access tag and MTU of its port on the host bridge, and the addresses of
// its node end.
type DeclaredInterface struct {
	Name    string `json:"name"`
	VLANTag int    `json:"vlan_tag"`
	MTU     int    `json:"mtu,omitempty"` // 0: the runtime's default
	MAC     string `json:"mac,omitempty"` // of the node end; "" derives one from lab, node and name
	// Addresses are the prefixes (e.g. "172.20.20.2/24", IPv4 or IPv6) the
	// node end holds, exactly; none leaves its addresses to the node (a lab
	// file's exec commands set them).
	Addresses []string `json:"addresses,omitempty"`
}

// MaxAddresses bounds the addresses one interface declares.
const MaxAddresses = 16

// NodeStatus is how one declared (or removed) node converged.
type NodeStatus struct {
	LabID     string  `json:"lab_id"`
	Name      string  `json:"name"`
	Status    string  `json:"status"` // converged, created, updated, removed or error
	RuntimeID string  `json:"runtime_id,omitempty"`
	Error     *string `json:"error"`
	// ExecFailures are the exec commands that failed when this declaration
	// made the node (status created); none for a node it found.
	ExecFailures []ExecFailure `json:"exec_failures,omitempty"`
}

// InterfaceStatus is how one node interface's port converged.
type InterfaceStatus struct {
	LabID      string  `json:"lab_id"`
	Node       string  `json:"node"`
	Interface  string  `json:"interface"`
	PortName   string  `json:"port_name"`
	Status     string  `json:"status"` // converged, created, updated, removed or error
	ActualVLAN *int    `json:"actual_vlan"`
	Error      *string `json:"error"`
}

// HostDeclarationResponse answers a host declaration: a result for every
// declared node, interface and tunnel, and one with status "removed" for
// every owned object it removed.
type HostDeclarationResponse struct {
	Nodes              []NodeStatus      `json:"nodes"`
	Interfaces         []InterfaceStatus `json:"interfaces"`
	Tunnels            []TunnelResult    `json:"tunnels"`
	Skipped            *string           `json:"skipped"` // SkippedOVSReadError: nothing changed
	ObservedGeneration *int64            `json:"observed_generation"`
	// CacheError (new) says the agent converged but could not write its
	// cache: a restart would not restore this state.
	CacheError *string `json:"cache_error,omitempty"`
}

// Validate checks a whole host declaration; any problem means a 400 and no
// change.
func (r *HostDeclaration) Validate() error {
	var ps problems
	type key struct{ lab, node string }
	nodes := map[key]int{}
	for i, n := range r.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		checkLab(&ps, f+".lab_id", n.LabID)
		checkNode(&ps, f+".name", n.Name)
		if j, dup := nodes[key{n.LabID, n.Name}]; dup {
			ps.add(f+".name", "%q: also nodes[%d]", n.Name, j)
		} else {
			nodes[key{n.LabID, n.Name}] = i
		}
		if len(n.Kind) > 64 {
			ps.add(f+".kind", "%d characters: want at most 64", len(n.Kind))
		}
		if len(n.Image) > 512 {
			ps.add(f+".image", "%d characters: want at most 512", len(n.Image))
		}
		checkExec(&ps, f+".exec", n.Exec)
		for _, p := range n.Container.Problems() {
			ps.add(f+".container."+p.Field, "%s", p.Reason)
		}
		checkFiles(&ps, f+".files", n.Files)
		seen := map[string]int{}
		for k, ifc := range n.Interfaces {
			fi := fmt.Sprintf("%s.interfaces[%d]", f, k)
			checkIface(&ps, fi+".name", ifc.Name)
			if j, dup := seen[ifc.Name]; dup {
				ps.add(fi+".name", "%q: also interfaces[%d]", ifc.Name, j)
			} else {
				seen[ifc.Name] = k
			}
			checkTag(&ps, fi+".vlan_tag", ifc.VLANTag, false)
			checkMTU(&ps, fi+".mtu", ifc.MTU)
			if ifc.MAC != "" {
				if hw, err := net.ParseMAC(ifc.MAC); err != nil || len(hw) != 6 || hw[0]&1 != 0 {
					ps.add(fi+".mac", "%q: want a unicast MAC address", ifc.MAC)
				}
			}
			checkAddresses(&ps, fi+".addresses", ifc.Addresses)
		}
	}
	checkTunnels(&ps, r.Tunnels)
	checkScope(&ps, r.DeclaredLabs, r.Generation)
	return ps.err()
}

// Scope returns the labs a declaration speaks for: DeclaredLabs and the labs
// of its nodes and tunnels.
func (r *HostDeclaration) Scope() map[string]bool {
	scope := map[string]bool{}
	for _, lab := range r.DeclaredLabs {
		scope[lab] = true
	}
	for _, n := range r.Nodes {
		scope[n.LabID] = true
	}
	for _, t := range r.Tunnels {
		scope[t.LabID] = true
	}
	return scope
}
