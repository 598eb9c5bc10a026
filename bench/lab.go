package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// Chain is a lab of nodes r0 … r(n-1) linked in a line, r<i>:eth2 to
// r<i+1>:eth1, each node pinned to the host HostOf gives it.
type Chain struct {
	Name   string
	Nodes  int
	HostOf func(i int) string
	// Image makes every node a container of it; "" keeps them namespaces.
	Image string
}

// Link is one link of the chain: its two nodes and whether it crosses
// hosts.
type Link struct {
	A, B  int
	Cross bool
}

// Links lists the chain's links.
func (c Chain) Links() []Link {
	out := make([]Link, 0, c.Nodes-1)
	for i := 0; i+1 < c.Nodes; i++ {
		out = append(out, Link{A: i, B: i + 1, Cross: c.HostOf(i) != c.HostOf(i+1)})
	}
	return out
}

// Addr is the address of node i on the link between i and i+1 (side 1) or
// i-1 and i (side 2), for the nodes that SampleNodes gives an exec.
func Addr(link, side int) string {
	return fmt.Sprintf("10.%d.%d.%d", 100+link/250, link%250, side)
}

// Sample is how many links from the start of the chain carry addresses,
// set by their nodes' exec commands, for a traffic check.
const Sample = 3

// File renders the chain as a lab file in containerlab's format.
func (c Chain) File() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntopology:\n  defaults: {kind: linux}\n  nodes:\n", c.Name)
	for i := range c.Nodes {
		fmt.Fprintf(&b, "    r%d:\n      host: %s\n", i, c.HostOf(i))
		if c.Image != "" {
			fmt.Fprintf(&b, "      image: %s\n", c.Image)
		}
		var exec []string
		if i < Sample { // r<i>:eth2 is link i's first side
			exec = append(exec, fmt.Sprintf("ip addr add %s/24 dev eth2", Addr(i, 1)))
		}
		if i > 0 && i-1 < Sample { // r<i>:eth1 is link i-1's second side
			exec = append(exec, fmt.Sprintf("ip addr add %s/24 dev eth1", Addr(i-1, 2)))
		}
		if len(exec) > 0 {
			fmt.Fprintf(&b, "      exec: [%q]\n", strings.Join(exec, " && "))
		}
	}
	b.WriteString("  links:\n")
	for _, l := range c.Links() {
		fmt.Fprintf(&b, "    - endpoints: [\"r%d:eth2\", \"r%d:eth1\"]\n", l.A, l.B)
	}
	return []byte(b.String())
}

// ChainBaseline makes the chain's objects the plain way on the hosts, all
// hosts at once: on each, `ip netns add` per node, one `ip -batch` for the
// veths and VXLAN devices, and one `ovs-vsctl` transaction for the bridge
// and every port with its tag. It returns how long the slowest host took.
func ChainBaseline(ctx context.Context, c Chain, hosts map[string]*testbed.Host, dataIP map[string]string) (time.Duration, error) {
	type work struct {
		nodes []int
		batch strings.Builder
		vsctl []string
	}
	per := map[string]*work{}
	for name := range hosts {
		per[name] = &work{vsctl: []string{"add-br", Bridge, "--", "set", "bridge", Bridge, "datapath_type=netdev", "fail_mode=standalone"}}
	}
	for i := range c.Nodes {
		per[c.HostOf(i)].nodes = append(per[c.HostOf(i)].nodes, i)
	}
	port := func(w *work, name string, tag int) {
		w.vsctl = append(w.vsctl, "--", "add-port", Bridge, name, fmt.Sprintf("tag=%d", tag))
	}
	veth := func(w *work, node int, iface string, tag int) {
		ns := ident.NamespaceName(c.Name, fmt.Sprintf("r%d", node))
		host := ident.HostPortName(c.Name, fmt.Sprintf("r%d", node), iface)
		tmp := "t" + host[3:]
		fmt.Fprintf(&w.batch, "link add %s up type veth peer name %s\nlink set dev %s netns %s name %s up\n", host, tmp, tmp, ns, iface)
		port(w, host, tag)
	}
	for k, l := range c.Links() {
		tag := 2050 + k%1950
		ha, hb := c.HostOf(l.A), c.HostOf(l.B)
		veth(per[ha], l.A, "eth2", tag)
		veth(per[hb], l.B, "eth1", tag)
		if !l.Cross {
			continue
		}
		link := ident.LinkName(fmt.Sprintf("r%d:eth2", l.A), fmt.Sprintf("r%d:eth1", l.B))
		dev := ident.PortName(c.Name, link)
		for _, s := range [][2]string{{ha, hb}, {hb, ha}} {
			fmt.Fprintf(&per[s[0]].batch, "link add %s mtu 1450 up type vxlan id %d local %s remote %s dstport 4789 nolearning\n",
				dev, 100000+k, dataIP[s[0]], dataIP[s[1]])
			port(per[s[0]], dev, tag)
		}
	}
	var mu sync.Mutex
	var slowest time.Duration
	var errs []error
	var wg sync.WaitGroup
	for name, w := range per {
		h := hosts[name]
		file := filepath.Join(h.Dir, "chain.batch")
		if err := os.WriteFile(file, []byte(w.batch.String()), 0o644); err != nil {
			return 0, err
		}
		wg.Go(func() {
			start := time.Now()
			err := func() error {
				// In the root mount namespace: one made inside `ip netns exec`
				// would not be seen outside it.
				for _, i := range w.nodes {
					ns := ident.NamespaceName(c.Name, fmt.Sprintf("r%d", i))
					if out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns).CombinedOutput(); err != nil {
						return fmt.Errorf("ip netns add %s: %w: %s", ns, err, out)
					}
				}
				if _, err := h.Exec(ctx, "ip", "-batch", file); err != nil {
					return err
				}
				_, err := h.VSCtl(ctx, w.vsctl...)
				return err
			}()
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			if err != nil {
				errs = append(errs, fmt.Errorf("baseline on %s: %w", name, err))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, errs[0]
	}
	return slowest, nil
}
