// Package runtime is the seam between the agent and whatever runs lab nodes
// on a host: network namespaces (runtime/netns), containers (runtime/docker),
// VMs later. One pseudo-node, HostNode, stands for the host itself: its
// interfaces live in the host's own namespace (netns.Host runs it).
//
// A runtime creates and deletes nodes and their interfaces, and lists every
// node it runs on the host in one pass. It never touches the OVS bridge: the
// agent attaches the host ends it returns through the fabric driver, so every
// runtime gets the same tagging and ownership rules.
//
// Design notes: the interface is four methods on purpose (containerlab's
// 47-method node interface is what we avoid). CreateNode must accept the same
// spec twice, as tailscale's router.Set must, because the agent converges to
// the same declaration again and again; List is what lets it skip nodes that
// already match. runtimetest.RunConformance checks every runtime against
// this contract. A runtime whose nodes change without the host's links
// saying so at once (a container that stops) may also be a Watcher
// (watch.go), whose events wake the agent's repair.
package runtime

import (
	"context"
	"io"
	"net/netip"

	"github.com/netloom/netloom/internal/wire"
)

// Runtime runs lab nodes on one host.
type Runtime interface {
	// List reports every node of this runtime on the host, with its
	// interfaces, in one read. A node whose interfaces are all gone may be
	// missing from it.
	List(ctx context.Context) ([]Node, error)
	// CreateNode makes the node and its interfaces, or makes it match the
	// spec: missing interfaces are made, interfaces of this runtime that the
	// spec does not name are removed. On error, nothing it made in this call
	// remains.
	CreateNode(ctx context.Context, spec NodeSpec) (Node, error)
	// DeleteNode removes a node and its interfaces, and ends its processes:
	// nothing started inside a node outlives it. A missing node is not an
	// error.
	DeleteNode(ctx context.Context, lab, node string) error
	// Exec runs argv inside a node, with no shell unless argv names one,
	// writing its stdout and stderr to the writers as they come, and returns
	// its exit code (128+n for a command ended by signal n). An error means
	// the command did not run to its end: no such node (ErrNoNode), a
	// runtime failure, or ctx ended. When ctx ends, the command ends where
	// the runtime can end it: netns kills its process group; the Docker
	// Engine API has no call to end an exec, and its daemon ends one whose
	// client went only once it notices.
	Exec(ctx context.Context, lab, node string, argv []string, stdout, stderr io.Writer) (int, error)
}

// NodeSpec is a node as the agent wants it.
type NodeSpec struct {
	Lab        string
	Name       string
	Image      string // for a runtime that runs images; "" for none
	Interfaces []InterfaceSpec
	// Container is what a container runtime applies beyond the image; its
	// relative bind sources are already files on the host (absolute).
	Container *wire.Container
	// FullChecksums says the node's interfaces send packets with their
	// checksums complete (transmit checksum offload off): for a fabric
	// whose tunnels cannot complete partial checksums, OVS's own VXLAN
	// ports on the userspace datapath.
	FullChecksums bool
}

// HostNode (wire.HostNode) is the node that stands for the host's own
// namespace, the one holding the bridge. Its interfaces are veths whose
// node end stays in that namespace.
const HostNode = wire.HostNode

// InterfaceSpec is one node interface; MTU 0 keeps the runtime's default.
type InterfaceSpec struct {
	Name string // inside the node, e.g. "eth1"
	MTU  int
	MAC  string // of the node end; "" derives one from lab, node and name
	// Addresses are what the node end holds, exactly; none leaves its
	// addresses as they are (a lab file's exec commands set them).
	Addresses []netip.Prefix
}

// Node is a node as it exists.
type Node struct {
	Lab   string
	Name  string
	ID    string // runtime id: the namespace name for netns; for HostNode the host's ("host" for the agent's own)
	Ports []Port
	// New says this call made the node, rather than found it: its exec
	// commands are due.
	New bool
}

// Port is one node interface and the host end that carries it.
type Port struct {
	Lab       string
	Node      string
	Interface string // inside the node
	HostPort  string // the host end, the name of the OVS port
	Ifindex   int    // of the host end
	OperState string // of the host end, as the kernel reports it ("up", "down", …)
	// Down says the host end is administratively down: something else (an
	// ovs-vswitchd that let go of it) set it down, and no frame passes.
	Down bool
	MTU  int // of the host end
}
