// Package netns is the node runtime that makes each lab node a named network
// namespace, ident.NamespaceName ("nl-<lab>-<node>-<hash>"), marked as the
// node's by the alias of its lo ("netloom/<lab>/<node>", and "@<host>" for a
// named host namespace), and each node interface ethN a veth whose host
// end, named by ident.HostPortName, stays in the host's namespace for the
// agent to attach to the bridge. Host runs the pseudo-node runtime.HostNode
// the same way, with both ends of each veth in the host's namespace. Wire
// (shared with the docker runtime) also sets the addresses an interface
// declares. The package holds the namespace primitives (Create, Delete,
// NewHandle) that the rest of netloom and the test bed share.
//
// It never touches OVS and never decides tags. It keeps no state of its own:
// the host end of every veth carries the alias "netloom/<lab>/<node>/<iface>",
// so List answers from one netlink dump, plus the marks of namespaces it has
// not seen before (nodes without interfaces are found by them), and a
// restarted agent finds the same answer. A namespace of a node's name that
// is not marked as that node's on this host is never adopted, listed or
// deleted: names are hashed so that none collide, and the mark makes sure.
//
// Design notes: every namespace and link is made over netlink from handles
// bound to a namespace; no thread of the process is left in another
// namespace, and the main thread never enters one (see Create). A failed
// CreateNode removes what that call made, so no half-built node stays
// behind. CreateNode and DeleteNode read only the node's own namespace, so
// many nodes are made and removed in parallel without racing dumps of the
// host's links. DeleteNode ends the node's processes (SIGTERM, then SIGKILL
// after a grace) and deletes the namespace: the kernel then removes its
// interfaces, host ends included, in one batch — one RCU grace period
// instead of one per veth.
package netns
