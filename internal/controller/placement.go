package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/topology"
)

// The node runtimes agents offer, as they report them among their
// capabilities.
const (
	runtimeNetns  = "netns"
	runtimeDocker = "docker"
)

// runtimeOf names the runtime a node needs.
func runtimeOf(n topology.Node) string {
	if n.Image != "" {
		return runtimeDocker
	}
	return runtimeNetns
}

// offered reads the runtimes a host's capabilities offer. An agent that
// names none (the original's) runs netns nodes.
func offered(capabilities []string) map[string]bool {
	o := map[string]bool{}
	for _, rt := range []string{runtimeNetns, runtimeDocker} {
		o[rt] = slices.Contains(capabilities, rt)
	}
	if !o[runtimeNetns] && !o[runtimeDocker] {
		o[runtimeNetns] = true
	}
	return o
}

// errPlacement reports a lab that cannot be placed on the hosts online.
var errPlacement = errors.New("cannot place nodes")

// place decides the host of every node. Placement is sticky (DESIGN §11): a
// node keeps its current host unless its file pins another one or that host
// is no longer known. A node without a placement goes to its pinned host,
// which must be online, or else to the online host that adds the fewest
// cross-host links to the nodes placed so far, then the least loaded, then
// the first by name. load counts the nodes each host runs for other labs.
//
// A node runs only on a host whose agent offers its runtime (offers, by
// host: docker for a node with an image, netns for one without; a host
// missing from offers runs netns nodes only): it is placed among those, a
// pin to another host is an error naming both, and a node placed on a host
// that no longer fits it (given an image) is placed again.
func place(nodes []topology.Node, links []topology.Link, current map[string]string, known map[string]bool,
	online []string, load map[string]int, offers map[string]map[string]bool) (map[string]string, error) {
	hosts := slices.Sorted(slices.Values(online))
	isOnline := map[string]bool{}
	for _, h := range hosts {
		isOnline[h] = true
	}
	placed := map[string]string{}
	count := map[string]int{}
	for h, n := range load {
		count[h] = n
	}
	var errs []string
	fits := func(n topology.Node, h string) bool {
		o, ok := offers[h]
		return o[runtimeOf(n)] || !ok && runtimeOf(n) == runtimeNetns
	}
	for _, n := range nodes {
		cur := current[n.Name]
		switch {
		case n.Host != "" && !fits(n, n.Host) && n.Image != "":
			errs = append(errs, fmt.Sprintf("node %s runs image %s: host %s has no container runtime", n.Name, n.Image, n.Host))
			continue
		case n.Host != "" && !fits(n, n.Host):
			errs = append(errs, fmt.Sprintf("node %s has no image: host %s runs containers only (give it an image, or pin it to a host that runs netns nodes)", n.Name, n.Host))
			continue
		case cur != "" && known[cur] && fits(n, cur) && (n.Host == "" || n.Host == cur):
			placed[n.Name] = cur
		case n.Host == "":
			continue
		case !isOnline[n.Host]:
			errs = append(errs, fmt.Sprintf("node %s: host %s is not online", n.Name, n.Host))
			continue
		default:
			placed[n.Name] = n.Host
		}
		count[placed[n.Name]]++
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", errPlacement, strings.Join(errs, "; "))
	}
	if len(placed) < len(nodes) && len(hosts) == 0 {
		return nil, fmt.Errorf("%w: no host is online", errPlacement)
	}
	neighbours := map[string][]string{}
	for _, l := range links {
		neighbours[l.A.Node] = append(neighbours[l.A.Node], l.B.Node)
		neighbours[l.B.Node] = append(neighbours[l.B.Node], l.A.Node)
	}
	for _, n := range nodes {
		if _, ok := placed[n.Name]; ok {
			continue
		}
		best, bestCross, bestLoad := "", 0, 0
		for _, h := range hosts {
			if !fits(n, h) {
				continue
			}
			cross := 0
			for _, nb := range neighbours[n.Name] {
				if ph, ok := placed[nb]; ok && ph != h {
					cross++
				}
			}
			if best == "" || cross < bestCross || cross == bestCross && count[h] < bestLoad {
				best, bestCross, bestLoad = h, cross, count[h]
			}
		}
		if best == "" && n.Image != "" {
			errs = append(errs, fmt.Sprintf("node %s runs image %s: no online host has a container runtime", n.Name, n.Image))
			continue
		}
		if best == "" {
			errs = append(errs, fmt.Sprintf("node %s has no image: no online host runs netns nodes", n.Name))
			continue
		}
		placed[n.Name] = best
		count[best]++
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", errPlacement, strings.Join(errs, "; "))
	}
	return placed, nil
}
