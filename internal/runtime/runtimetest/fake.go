// Package runtimetest is a fake runtime.Runtime for unit tests of the logic
// above the seam: it keeps a host's nodes in memory with the real runtime's
// semantics (CreateNode completes a node and removes interfaces it does not
// name, DeleteNode of a missing node succeeds), records exec commands, and
// can be told to fail.
package runtimetest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
)

type key struct{ lab, node string }

// Fake is an in-memory runtime.Runtime.
type Fake struct {
	mu sync.Mutex
	// mu guards the following.
	nodes   map[key][]string // interfaces by node
	execs   []string         // "lab/node: cmd", in order
	creates int
	// FailCreate makes CreateNode of these nodes ("lab/node") fail.
	FailCreate map[string]error
	// ListErr, when set, fails every List.
	ListErr error
}

var _ runtime.Runtime = (*Fake)(nil)

// New returns a host without nodes.
func New() *Fake { return &Fake{nodes: map[key][]string{}} }

func node(k key, ifaces []string) runtime.Node {
	n := runtime.Node{Lab: k.lab, Name: k.node, ID: ident.NamespaceName(k.lab, k.node)}
	for _, i := range ifaces {
		n.Ports = append(n.Ports, runtime.Port{Lab: k.lab, Node: k.node, Interface: i,
			HostPort: ident.HostPortName(k.lab, k.node, i), OperState: "up"})
	}
	return n
}

// List returns every node, sorted.
func (f *Fake) List(context.Context) ([]runtime.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ListErr != nil {
		return nil, f.ListErr
	}
	var out []runtime.Node
	for _, k := range slices.SortedFunc(maps.Keys(f.nodes), func(a, b key) int {
		return strings.Compare(a.lab+"/"+a.node, b.lab+"/"+b.node)
	}) {
		out = append(out, node(k, f.nodes[k]))
	}
	return out, nil
}

// CreateNode makes the node or makes it match spec.
func (f *Fake) CreateNode(_ context.Context, spec runtime.NodeSpec) (runtime.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if err := f.FailCreate[spec.Lab+"/"+spec.Name]; err != nil {
		return runtime.Node{}, fmt.Errorf("create node %s: %w", spec.Name, err)
	}
	k := key{spec.Lab, spec.Name}
	_, exists := f.nodes[k]
	var ifaces []string
	for _, i := range spec.Interfaces {
		ifaces = append(ifaces, i.Name)
	}
	f.nodes[k] = ifaces
	n := node(k, ifaces)
	n.New = !exists
	return n, nil
}

// DeleteNode removes a node.
func (f *Fake) DeleteNode(_ context.Context, lab, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nodes, key{lab, name})
	return nil
}

// Exec records the command, its words joined by spaces; it succeeds.
func (f *Fake) Exec(_ context.Context, lab, name string, argv []string, _, _ io.Writer) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[key{lab, name}]; !ok {
		return -1, fmt.Errorf("exec in node %s: %w", name, runtime.ErrNoNode)
	}
	f.execs = append(f.execs, lab+"/"+name+": "+strings.Join(argv, " "))
	return 0, nil
}

// Kill removes a node as `ip netns del` would, behind the agent's back.
func (f *Fake) Kill(lab, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nodes, key{lab, name})
}

// Execs returns the commands run so far.
func (f *Fake) Execs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.execs)
}

// Creates returns how many times CreateNode was called.
func (f *Fake) Creates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates
}

// Dump renders the nodes as sorted text.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for k, ifaces := range f.nodes {
		lines = append(lines, fmt.Sprintf("node %s/%s %s", k.lab, k.node, strings.Join(ifaces, ",")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
