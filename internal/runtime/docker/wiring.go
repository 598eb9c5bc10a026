package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/netloom/netloom/internal/runtime"
)

// inspectWorkers bounds how many containers List inspects at once.
const inspectWorkers = 8

// dropStale takes from nodes (running containers, by container name in
// ids) the host ends whose peers are not in the container's namespace now:
// the container started again behind the agent's back (docker restart, or
// docker start while the agent was down) and its old namespace, with the
// old peers, has not gone yet. A node so left without ports is made again
// by the agent: CreateNode finds its namespace bare and wires it afresh.
// peers gives each host end's peer namespace id, as the host sees it.
//
// It costs one inspect per node with ports, so the drift is seen from List
// alone: events may be lost, and the agent may have been down.
func (r *Runtime) dropStale(ctx context.Context, host *netlink.Handle, nodes []runtime.Node, peers map[int]int) ([]runtime.Node, error) {
	cts := make([]Container, len(nodes))
	errs := make([]error, len(nodes))
	sem := make(chan struct{}, inspectWorkers)
	var wg sync.WaitGroup
	for i, n := range nodes {
		if len(n.Ports) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cts[i], errs[i] = r.client.Inspect(ctx, n.ID)
		})
	}
	wg.Wait()
	out := nodes[:0]
	for i, n := range nodes {
		if len(n.Ports) == 0 {
			out = append(out, n)
			continue
		}
		switch {
		case errors.Is(errs[i], ErrNoContainer):
			continue // removed since the list
		case errs[i] != nil:
			return nil, errs[i]
		case !cts[i].Running || cts[i].SandboxKey == "":
			continue // stopped since the list: it must be started again
		}
		id, err := namespaceID(host, cts[i].SandboxKey)
		if errors.Is(err, os.ErrNotExist) {
			continue // stopped since the inspect
		}
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		for _, p := range n.Ports {
			if peer := peers[p.Ifindex]; peer >= 0 && peer != id {
				r.log.Info("node restarted behind the agent's back: its interfaces are in its old namespace",
					"lab", n.Lab, "node", n.Name, "container", n.ID)
				n.Ports = nil
				break
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// namespaceID returns the id the host's namespace gives the namespace at
// path (-1 for none yet: no peer of the host's is in it).
func namespaceID(host *netlink.Handle, path string) (int, error) {
	ns, err := vnetns.GetFromPath(path)
	if err != nil {
		return 0, fmt.Errorf("open its namespace: %w", err)
	}
	defer ns.Close()
	id, err := host.GetNetNsIdByFd(int(ns))
	if err != nil {
		return 0, fmt.Errorf("namespace id: %w", err)
	}
	return id, nil
}
