// Package docker is the node runtime that runs a node with an image as a
// Docker container: named as its namespace would be under netns
// (ident.NamespaceName), marked with netloom's labels (owner, lab, node; a
// container of that name without the node's labels is never adopted, listed
// or deleted), without a network of Docker's (--network none), with the capabilities
// network software needs, never restarted by Docker (the agent owns the
// node's life). Its interfaces are made inside the container's network
// namespace by netns.Wire, exactly as a netns node's are: veths whose host
// ends the agent puts on the bridge.
//
// It talks to the daemon through a small Engine API client over the unix
// socket (client.go) rather than Docker's Go module, which would bring some
// twenty modules for the seven calls a node runtime makes. API version 1.41
// is what Debian's docker.io 20.10 serves.
//
// Design notes: a container that stops and starts again gets a new network
// namespace without its interfaces, so CreateNode of a container that is
// not running starts it and wires it afresh, and says so (New), so that its
// exec commands run again. A stopped container's namespace can outlive it,
// so DeleteNode removes the host ends itself before the container, and List
// does not report host ends whose peers are in an old namespace of the
// container (wiring.go). Watch (events.go) streams the daemon's events of
// netloom's containers, so the agent repairs a container that stopped or
// started again within its debounce rather than when the host ends go.
package docker
