package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrNoNode is a node the runtime does not run.
var ErrNoNode = errors.New("no such node")

// Set runs each node on the runtime for it: HostNode on the host runtime, a
// node with an image on the container runtime, any other on the plain one.
// It is itself a Runtime, so the agent converges a host of mixed nodes as
// one.
type Set struct {
	// Plain runs nodes without an image (netns); nil when the host offers
	// only containers, and then such a node is an error.
	Plain Runtime
	// Images runs nodes with an image; nil when the host has no container
	// runtime, and then such a node is an error.
	Images Runtime
	// Host runs the pseudo-node HostNode of every lab, and no other node:
	// the other runtimes never see a node of that name. nil when the host
	// offers none, and then such a node is an error.
	Host Runtime
}

var _ Runtime = Set{}

// all returns the runtimes of the set, the host runtime among them.
func (s Set) all() []Runtime {
	var out []Runtime
	for _, r := range []Runtime{s.Plain, s.Images, s.Host} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// List lists the nodes of every runtime, HostNode only from the host
// runtime: what another runtime made for a node of that name (before it
// was the host's) is not it.
func (s Set) List(ctx context.Context) ([]Node, error) {
	var out []Node
	for _, r := range s.all() {
		nodes, err := r.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if (n.Name == HostNode) == (r == s.Host) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// nodeRuntimes returns the runtimes that may run a node of that name.
func (s Set) nodeRuntimes(node string) []Runtime {
	if node == HostNode {
		if s.Host == nil {
			return nil
		}
		return []Runtime{s.Host}
	}
	var out []Runtime
	for _, r := range []Runtime{s.Plain, s.Images} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// CreateNode makes the node on the runtime for it.
func (s Set) CreateNode(ctx context.Context, spec NodeSpec) (Node, error) {
	if spec.Name == HostNode {
		if s.Host == nil {
			return Node{}, fmt.Errorf("node %s: this host runs no host interfaces", spec.Name)
		}
		return s.Host.CreateNode(ctx, spec)
	}
	if spec.Image == "" {
		if s.Plain == nil {
			return Node{}, fmt.Errorf("node %s has no image: this host runs only containers", spec.Name)
		}
		return s.Plain.CreateNode(ctx, spec)
	}
	if s.Images == nil {
		return Node{}, fmt.Errorf("node %s runs image %s: this host has no container runtime", spec.Name, spec.Image)
	}
	return s.Images.CreateNode(ctx, spec)
}

// DeleteNode removes the node from whichever runtime runs it: a node whose
// image was added or dropped may still run on the other one.
func (s Set) DeleteNode(ctx context.Context, lab, node string) error {
	var errs []error
	for _, r := range s.nodeRuntimes(node) {
		errs = append(errs, r.DeleteNode(ctx, lab, node))
	}
	return errors.Join(errs...)
}

// Exec runs argv in the node, on whichever runtime runs it.
func (s Set) Exec(ctx context.Context, lab, node string, argv []string, stdout, stderr io.Writer) (int, error) {
	err := fmt.Errorf("exec in node %s: %w", node, ErrNoNode)
	for _, r := range s.nodeRuntimes(node) {
		var code int
		if code, err = r.Exec(ctx, lab, node, argv, stdout, stderr); !errors.Is(err, ErrNoNode) {
			return code, err
		}
	}
	return -1, err
}
