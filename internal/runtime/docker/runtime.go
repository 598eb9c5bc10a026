package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/google/shlex"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/wire"
)

// capabilities are what network software in a node needs: interfaces,
// routes and sockets of its own namespace.
var capabilities = []string{"NET_ADMIN", "SYS_ADMIN", "NET_RAW"}

// Config says which daemon the runtime uses and where the bridge is.
type Config struct {
	// Socket is the Docker daemon's unix socket.
	Socket string
	// HostNetns is the namespace that holds the host ends and the bridge;
	// empty means the agent's own.
	HostNetns string
}

// Runtime runs nodes as Docker containers.
type Runtime struct {
	cfg    Config
	client *Client
	pub    *publisher
	log    *slog.Logger
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a runtime on the daemon at cfg.Socket, which must answer.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Runtime, error) {
	c := NewClient(cfg.Socket)
	if err := c.Ping(ctx); err != nil {
		return nil, fmt.Errorf("docker at %s: %w", cfg.Socket, err)
	}
	return &Runtime{cfg: cfg, client: c, pub: newPublisher(cfg.HostNetns, log), log: log}, nil
}

// name is a node's container: the name its namespace would have under netns.
func name(lab, node string) string { return ident.NamespaceName(lab, node) }

// ours reports whether a container carries the node's marks.
func ours(c Container, lab, node string) bool {
	return c.Labels[ident.OwnerKey] == ident.OwnerValue && c.Labels[ident.LabKey] == lab && c.Labels[ident.NodeKey] == node
}

// CreateNode makes the node's container and starts it, or starts it again
// if it stopped, then makes its interfaces match spec inside it. A container
// that starts gets a new network namespace, so its interfaces are made
// afresh and, as for a new node, its exec commands are due (New).
func (r *Runtime) CreateNode(ctx context.Context, spec runtime.NodeSpec) (runtime.Node, error) {
	if err := netns.Validate(spec); err != nil {
		return runtime.Node{}, err
	}
	if spec.Image == "" {
		return runtime.Node{}, fmt.Errorf("node %s: no image", spec.Name)
	}
	cname := name(spec.Lab, spec.Name)
	ct, err := r.client.Inspect(ctx, cname)
	made := false
	switch {
	case errors.Is(err, ErrNoContainer):
		req, err := createRequest(spec)
		if err != nil {
			return runtime.Node{}, err
		}
		if _, err := r.client.Create(ctx, cname, req); err != nil {
			return runtime.Node{}, fmt.Errorf("create node %s: %w", spec.Name, err)
		}
		made = true
	case err != nil:
		return runtime.Node{}, err
	case !ours(ct, spec.Lab, spec.Name):
		return runtime.Node{}, fmt.Errorf("node %s: container %s exists and is not this node's", spec.Name, cname)
	}
	undo := func(err error) (runtime.Node, error) {
		if made {
			if rerr := r.client.Remove(context.WithoutCancel(ctx), cname); rerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
			}
		}
		return runtime.Node{}, err
	}
	fresh := made || !ct.Running
	if fresh {
		if err := r.client.Start(ctx, cname); err != nil {
			return undo(fmt.Errorf("start node %s: %w", spec.Name, err))
		}
		if ct, err = r.client.Inspect(ctx, cname); err != nil {
			return undo(err)
		}
	}
	if !ct.Running || ct.SandboxKey == "" {
		return undo(fmt.Errorf("node %s: container %s is not running", spec.Name, cname))
	}
	ns, err := vnetns.GetFromPath(ct.SandboxKey)
	if err != nil {
		return undo(fmt.Errorf("node %s: open its namespace: %w", spec.Name, err))
	}
	defer ns.Close()
	if !fresh {
		// Restarted behind the agent's back (docker restart): a new
		// namespace without the node's interfaces, and exec is due again.
		if fresh, err = bare(ns, spec); err != nil {
			return undo(err)
		}
	}
	host, err := netns.NewHandle(r.cfg.HostNetns)
	if err != nil {
		return undo(err)
	}
	defer host.Close()
	ports, err := netns.Wire(ctx, host, ns, spec, fresh)
	if err != nil {
		return undo(err)
	}
	if err := r.pub.publish(cname, ct.SandboxKey, ct.Labels[portsKey]); err != nil {
		return undo(fmt.Errorf("node %s: %w", spec.Name, err))
	}
	r.log.Info("node ready", "lab", spec.Lab, "node", spec.Name, "container", cname, "image", spec.Image, "ports", len(ports), "new", fresh)
	return runtime.Node{Lab: spec.Lab, Name: spec.Name, ID: cname, Ports: ports, New: fresh}, nil
}

// createRequest is the container a node spec asks for: its image and
// containerlab's settings, netloom's labels over the user's, no network of
// Docker's (netloom wires its interfaces), and no restart policy (the agent
// owns the node's life).
func createRequest(spec runtime.NodeSpec) (CreateRequest, error) {
	c := spec.Container
	if c == nil {
		c = &wire.Container{}
	}
	req := CreateRequest{Image: spec.Image, Hostname: spec.Name, User: c.User, Labels: map[string]string{}}
	maps.Copy(req.Labels, c.Labels)
	maps.Copy(req.Labels, map[string]string{ident.OwnerKey: ident.OwnerValue, ident.LabKey: spec.Lab, ident.NodeKey: spec.Name})
	if len(c.Ports) > 0 {
		req.Labels[portsKey] = strings.Join(c.Ports, ",")
	}
	var err error
	if c.Cmd != "" {
		if req.Cmd, err = shlex.Split(c.Cmd); err != nil {
			return CreateRequest{}, fmt.Errorf("node %s: cmd: %w", spec.Name, err)
		}
	}
	if c.Entrypoint != "" {
		if req.Entrypoint, err = shlex.Split(c.Entrypoint); err != nil {
			return CreateRequest{}, fmt.Errorf("node %s: entrypoint: %w", spec.Name, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		req.Env = append(req.Env, k+"="+c.Env[k])
	}
	hc := &req.HostConfig
	hc.NetworkMode = "none"
	hc.RestartPolicy.Name = "no"
	hc.CapAdd = slices.Clone(capabilities)
	for _, cp := range c.CapAdd {
		if cp = strings.TrimPrefix(strings.ToUpper(cp), "CAP_"); !slices.Contains(hc.CapAdd, cp) {
			hc.CapAdd = append(hc.CapAdd, cp)
		}
	}
	hc.Binds = c.Binds
	// A node forwards IPv4 unless its settings say otherwise: on a usual
	// Docker host a container inherits forwarding from the host, where
	// Docker turned it on, and lab files (routers of kind linux) count on it.
	// And it has IPv6, which Docker turns off in a container of no IPv6
	// network: its interfaces get link-local addresses, as containerlab's
	// nodes do (OSPFv3, IPv6 neighbours across a bridge).
	hc.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0"}
	maps.Copy(hc.Sysctls, c.Sysctls)
	if c.Memory != "" {
		if hc.Memory, err = wire.ParseMemory(c.Memory); err != nil {
			return CreateRequest{}, fmt.Errorf("node %s: memory: %w", spec.Name, err)
		}
	}
	hc.NanoCPUs = int64(c.CPU * 1e9)
	return req, nil
}

// bare reports whether a node's namespace holds none of its interfaces.
func bare(ns vnetns.NsHandle, spec runtime.NodeSpec) (bool, error) {
	if len(spec.Interfaces) == 0 {
		return false, nil
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, fmt.Errorf("node %s: %w", spec.Name, err)
	}
	defer h.Close()
	for _, ifc := range spec.Interfaces {
		if _, err := h.LinkByName(ifc.Name); err == nil {
			return false, nil
		}
	}
	return true, nil
}

// List reports every running container of netloom's, with its interfaces,
// from one list of containers and one dump of the host's links; a container
// whose host ends lead into an old namespace of it is reported without them
// (dropStale).
func (r *Runtime) List(ctx context.Context) ([]runtime.Node, error) {
	cs, err := r.client.List(ctx, ident.OwnerKey+"="+ident.OwnerValue)
	if err != nil {
		return nil, err
	}
	host, err := netns.NewHandle(r.cfg.HostNetns)
	if err != nil {
		return nil, err
	}
	defer host.Close()
	ports, peers, err := netns.HostPortsWithPeers(host)
	if err != nil {
		return nil, err
	}
	type key struct{ lab, node string }
	byNode := map[key][]runtime.Port{}
	for _, p := range ports {
		byNode[key{p.Lab, p.Node}] = append(byNode[key{p.Lab, p.Node}], p)
	}
	var nodes []runtime.Node
	for _, c := range cs {
		lab, node := c.Labels[ident.LabKey], c.Labels[ident.NodeKey]
		if !c.Running || !ours(c, lab, node) || c.Name != name(lab, node) {
			// A stopped container must be started and wired again; one
			// under another name (an older naming) is not the node's.
			continue
		}
		nodes = append(nodes, runtime.Node{Lab: lab, Name: node, ID: c.Name, Ports: byNode[key{lab, node}]})
		if c.Labels[portsKey] != "" {
			// An agent that started again publishes them again.
			if err := r.republish(ctx, c.Name); err != nil {
				r.log.Warn("ports not published", "lab", lab, "node", node, "err", err)
			}
		}
	}
	return r.dropStale(ctx, host, nodes, peers)
}

// republish publishes a running container's ports where its namespace is now.
func (r *Runtime) republish(ctx context.Context, cname string) error {
	ct, err := r.client.Inspect(ctx, cname)
	if err != nil {
		return err
	}
	return r.pub.publish(cname, ct.SandboxKey, ct.Labels[portsKey])
}

// DeleteNode removes the node's host ends, then its container with every
// process in it. The host ends go first: a stopped container's namespace,
// and the veths in it, may outlive it by many seconds.
func (r *Runtime) DeleteNode(ctx context.Context, lab, node string) error {
	cname := name(lab, node)
	ct, err := r.client.Inspect(ctx, cname)
	if errors.Is(err, ErrNoContainer) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ours(ct, lab, node) {
		return fmt.Errorf("delete node %s: container %s is not this node's", node, cname)
	}
	host, err := netns.NewHandle(r.cfg.HostNetns)
	if err != nil {
		return err
	}
	defer host.Close()
	ports, err := netns.HostPorts(host)
	if err != nil {
		return err
	}
	doomed := 0
	for _, p := range ports {
		if p.Lab != lab || p.Node != node {
			continue
		}
		if err := host.LinkSetGroup(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: p.Ifindex}}, netns.DoomedGroup); err != nil {
			return fmt.Errorf("delete node %s: mark %s: %w", node, p.HostPort, err)
		}
		doomed++
	}
	if doomed > 0 {
		if err := netns.DeleteGroup(r.cfg.HostNetns, netns.DoomedGroup); err != nil {
			return fmt.Errorf("delete node %s: %w", node, err)
		}
	}
	r.pub.unpublish(cname)
	if err := r.client.Remove(ctx, cname); err != nil {
		return fmt.Errorf("delete node %s: %w", node, err)
	}
	r.log.Info("node deleted", "lab", lab, "node", node, "container", cname)
	return nil
}

// Exec runs argv inside the node's container; a container of its name
// without the node's labels is not the node.
func (r *Runtime) Exec(ctx context.Context, lab, node string, argv []string, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return -1, fmt.Errorf("exec in node %s: no command", node)
	}
	cname := name(lab, node)
	ct, err := r.client.Inspect(ctx, cname)
	if err == nil && !ours(ct, lab, node) {
		return -1, fmt.Errorf("exec in node %s: %w: container %s is not this node's", node, runtime.ErrNoNode, cname)
	}
	code := -1
	if err == nil {
		code, err = r.client.ExecStream(ctx, cname, argv, stdout, stderr)
	}
	if errors.Is(err, ErrNoContainer) {
		return -1, fmt.Errorf("exec in node %s: %w: %w", node, runtime.ErrNoNode, err)
	}
	if err != nil {
		return -1, fmt.Errorf("exec %q in node %s: %w", argv[0], node, err)
	}
	return code, nil
}
