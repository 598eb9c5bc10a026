package wire

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
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
//
// A round is conditional (new), like an HTTP request with an ETag: a
// controller that got a successful answer to a whole declaration with
// Digest D from this agent may send, in a later round, only
// {"generation": g, "same_as": D}: "the declaration whose digest you hold,
// under generation g". An agent that holds D converges that declaration
// again, exactly as if it had been sent whole (a full check and repair);
// one that does not answers 412 and the controller sends it whole. Either
// way the agent's state is the whole declaration, never a difference.
type HostDeclaration struct {
	Nodes        []DeclaredNode   `json:"nodes"`
	Tunnels      []DeclaredTunnel `json:"tunnels"`
	DeclaredLabs []string         `json:"declared_labs"`
	// Generation fences stale controllers as in DeclareStateRequest.
	Generation *int64 `json:"generation,omitempty"`
	// Digest (new) is the declaration's Sum, sent with a whole one; the
	// agent keeps it with the declaration, for a later SameAs.
	Digest string `json:"digest,omitempty"`
	// SameAs (new) stands for the whole declaration whose Digest it is;
	// Nodes, Tunnels and DeclaredLabs are then empty.
	SameAs string `json:"same_as,omitempty"`
	// AnswerDigest (new) is the AnswerDigest of the last answer the
	// controller decoded from this agent: an answer with that digest again
	// comes back as SameAnswer.
	AnswerDigest string `json:"answer_digest,omitempty"`
}

// Sum returns the Digest that names a declaration for SameAs: the SHA-256,
// in hex, of its nodes (by lab and name), tunnels (by port name) and
// declared labs (sorted) as JSON. The order of a declaration's lists means
// nothing, so it is not part of the digest: an agent that restores the
// lists from its cache, in its own order, finds the same digest. Nor are
// the generation and the conditional fields.
func (r *HostDeclaration) Sum() string {
	nodes := append([]DeclaredNode{}, r.Nodes...)
	slices.SortFunc(nodes, func(a, b DeclaredNode) int {
		return cmp.Or(strings.Compare(a.LabID, b.LabID), strings.Compare(a.Name, b.Name))
	})
	tunnels := append([]DeclaredTunnel{}, r.Tunnels...)
	slices.SortFunc(tunnels, func(a, b DeclaredTunnel) int { return strings.Compare(a.PortName, b.PortName) })
	labs := append([]string{}, r.DeclaredLabs...)
	slices.Sort(labs)
	return digest(struct {
		Nodes        []DeclaredNode   `json:"nodes"`
		Tunnels      []DeclaredTunnel `json:"tunnels"`
		DeclaredLabs []string         `json:"declared_labs"`
	}{nodes, tunnels, labs})
}

// digest is the hex SHA-256 of v as JSON. Every wire shape encodes (its
// fields are plain data), so an encoding error cannot happen.
func digest(v any) string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(v); err != nil {
		panic(fmt.Sprintf("wire: digest of %T: %v", v, err))
	}
	return hex.EncodeToString(h.Sum(nil))
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
	// AnswerDigest (new) is this answer's Sum, sent with a whole answer to
	// a declaration that has a digest.
	AnswerDigest string `json:"answer_digest,omitempty"`
	// SameAnswer (new) says the answer is the one whose AnswerDigest the
	// declaration carried, under ObservedGeneration: the agent converged
	// and observed exactly what it answered then. Nodes, Interfaces and
	// Tunnels are then empty.
	SameAnswer bool `json:"same_answer,omitempty"`
}

// Sum returns the AnswerDigest that names an answer for SameAnswer: the SHA-256,
// in hex, of the answer as JSON without ObservedGeneration and the
// conditional fields. An answer that repaired anything reports it in its
// statuses, so its digest differs from that of the answer before.
func (r *HostDeclarationResponse) Sum() string {
	a := *r
	a.ObservedGeneration, a.AnswerDigest, a.SameAnswer = nil, "", false
	return digest(a)
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
	checkDigest(&ps, "digest", r.Digest)
	checkDigest(&ps, "same_as", r.SameAs)
	checkDigest(&ps, "answer_digest", r.AnswerDigest)
	if r.SameAs != "" {
		if len(r.Nodes)+len(r.Tunnels)+len(r.DeclaredLabs) > 0 || r.Digest != "" {
			ps.add("same_as", "want no nodes, tunnels, declared labs or digest with it")
		}
		if r.Generation == nil {
			ps.add("same_as", "want a generation with it")
		}
	}
	return ps.err()
}

// checkDigest checks a digest field: empty, or 64 lowercase hex digits.
func checkDigest(ps *problems, field, d string) {
	if d == "" {
		return
	}
	if _, err := hex.DecodeString(d); len(d) != 2*sha256.Size || err != nil || d != strings.ToLower(d) {
		ps.add(field, "%q: want a SHA-256 in lowercase hex", d)
	}
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
