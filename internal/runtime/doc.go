// Package runtime is the seam between the agent and whatever runs lab nodes
// on a host: network namespaces today (runtime/netns), containers and VMs
// later.
//
// A runtime creates and deletes nodes and their interfaces, and reports every
// node port of a lab in one pass. It never touches the OVS bridge: the agent
// attaches the host ends it returns through the fabric driver, so every
// runtime gets the same tagging and ownership rules.
//
// Design notes: the interface is four methods on purpose (containerlab's
// 47-method node interface is what we avoid). CreateNode must accept the same
// spec twice, as tailscale's router.Set must, because the agent replays
// declarations after restarts.
package runtime

import "context"

// Runtime runs lab nodes on one host.
type Runtime interface {
	// CreateNode makes the node and its interfaces, or completes them if some
	// exist already. On error, nothing it made in this call remains.
	CreateNode(ctx context.Context, spec NodeSpec) (Node, error)
	// DeleteNode removes a node and its interfaces; a missing node is not an
	// error.
	DeleteNode(ctx context.Context, lab, node string) error
	// Ports reports every node interface of a lab on this host, in one read.
	Ports(ctx context.Context, lab string) ([]Port, error)
	// Exec runs a shell command inside a node and returns its output.
	Exec(ctx context.Context, lab, node, cmd string) (string, error)
}

// NodeSpec is a node as the agent wants it.
type NodeSpec struct {
	Lab        string
	Name       string
	Interfaces []InterfaceSpec
}

// InterfaceSpec is one node interface; MTU 0 keeps the runtime's default.
type InterfaceSpec struct {
	Name string // inside the node, e.g. "eth1"
	MTU  int
}

// Node is a node as it exists.
type Node struct {
	Lab   string
	Name  string
	ID    string // runtime id: the namespace name for netns
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
}
