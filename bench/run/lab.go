package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/bench"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// benchTB lets a scenario use the test bed's cluster outside a test: a
// fatal error ends the scenario's goroutine, and the cleanups run when it
// ends, last first.
type benchTB struct {
	name string
	ctx  context.Context

	mu sync.Mutex
	// mu guards the following.
	cleanups []func()
	errs     []error
}

func (b *benchTB) Helper()                  {}
func (b *benchTB) Name() string             { return b.name }
func (b *benchTB) Context() context.Context { return b.ctx }
func (b *benchTB) Logf(format string, args ...any) {
	if b.Failed() { // the cluster's daemons' output, to see why
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}
func (b *benchTB) Skip(...any) { runtime.Goexit() }

func (b *benchTB) Cleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

func (b *benchTB) Errorf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

func (b *benchTB) Fatalf(format string, args ...any) {
	b.Errorf(format, args...)
	runtime.Goexit()
}

func (b *benchTB) Failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.errs) > 0
}

// runTB runs fn in a goroutine of its own with a benchTB, then its
// cleanups, and returns what failed.
func runTB(ctx context.Context, name string, fn func(t *benchTB)) error {
	t := &benchTB{name: name, ctx: ctx}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(t)
	}()
	<-done
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	return errors.Join(t.errs...)
}

// twoHosts alternates the chain over hostA and hostB in pairs, A B B A A B
// B …, so that 100 of 199 links cross hosts.
func twoHosts(i int) string { return [2]string{"hostA", "hostB"}[((i+1)/2)%2] }

// fourHosts spreads the chain over four hosts in pairs: every second link
// crosses hosts.
func fourHosts(i int) string { return fmt.Sprintf("host%c", 'A'+(i/2)%4) }

// labScenarios measures the lab life cycle through the CLI against a
// controller and real agents, beside the plain tools' baseline for the same
// objects: a 200-node lab over 2 hosts n times, and a 1000-node lab over 4
// hosts once.
func labScenarios(ctx context.Context, bin string, n int) ([]row, error) {
	apply := row{scenario: "lab apply, 200 nodes / 199 links over 2 hosts (100 cross-host), all up, traffic in a sample", target: "≤ 2 × baseline"}
	again := row{scenario: "lab apply of the same file again", target: "≤ 1 s, no bridge write", ok: true}
	destroy := row{scenario: "lab destroy of that lab, nothing left", target: "≤ 1.5 × baseline creation", ok: true}
	for range n {
		err := runTB(ctx, "bench-lab", func(t *benchTB) {
			d := lifeCycle(t, bin, 200, []string{"hostA", "hostB"}, twoHosts)
			apply.samples = append(apply.samples, d.apply)
			again.samples = append(again.samples, d.again)
			destroy.samples = append(destroy.samples, d.destroy)
			again.ok = again.ok && d.noWrite
		})
		if err != nil {
			return nil, fmt.Errorf("lab life cycle: %w", err)
		}
		var base time.Duration
		err = runTB(ctx, "bench-lab-baseline", func(t *benchTB) {
			base = chainBaseline(t, 200, []string{"hostA", "hostB"}, twoHosts)
		})
		if err != nil {
			return nil, fmt.Errorf("lab baseline: %w", err)
		}
		apply.baseline = append(apply.baseline, base)
		destroy.baseline = append(destroy.baseline, base)
	}
	apply.ok = float64(median(apply.samples)) <= 2*float64(median(apply.baseline))
	again.ok = again.ok && median(again.samples) <= time.Second
	destroy.ok = float64(median(destroy.samples)) <= 1.5*float64(median(destroy.baseline))
	if !again.ok {
		again.figure = "the bridge was written"
	}

	big := row{scenario: "lab apply, 1000 nodes / 1000 links over 4 hosts (500 cross-host); then destroy", target: "reported", ok: true}
	var base time.Duration
	err := runTB(ctx, "bench-biglab", func(t *benchTB) {
		d := lifeCycle(t, bin, 1000, []string{"hostA", "hostB", "hostC", "hostD"}, fourHosts)
		big.samples = []time.Duration{d.apply}
		big.figure = fmt.Sprintf("destroy %v", d.destroy.Round(time.Millisecond))
	})
	if err == nil {
		err = runTB(ctx, "bench-biglab-baseline", func(t *benchTB) {
			base = chainBaseline(t, 1000, []string{"hostA", "hostB", "hostC", "hostD"}, fourHosts)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("big lab: %w", err)
	}
	big.baseline = []time.Duration{base}
	return []row{apply, again, destroy, big}, nil
}

// cycleTimes is what one lab life cycle measured.
type cycleTimes struct {
	apply, again, destroy time.Duration
	noWrite               bool
}

// lifeCycle applies a chain lab through the CLI, checks every link up and
// traffic over a sample, applies it again, destroys it and checks that
// nothing is left on any host.
func lifeCycle(t *benchTB, bin string, nodes int, hosts []string, hostOf func(int) string) cycleTimes {
	// A host of 250 nodes takes longer than the default declaration timeout.
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: bin, Hosts: hosts, ControllerArgs: []string{"--declare-timeout", "5m"}})
	chain := bench.Chain{Name: c.Bed.ID(), Nodes: nodes, HostOf: hostOf}
	file := filepath.Join(c.Ctl.Dir, "lab.yaml")
	if err := os.WriteFile(file, chain.File(), 0o644); err != nil {
		t.Fatalf("lab file: %v", err)
	}
	var d cycleTimes
	start := time.Now()
	if out, err := c.CLI(t, "lab", "apply", "-f", file, "--timeout", "20m"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	d.apply = time.Since(start)
	out, err := c.CLI(t, "link", "ls", chain.Name, "-o", "json")
	if err != nil {
		t.Fatalf("link ls: %v\n%s", err, out)
	}
	var links []wire.LinkState
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("link ls: %v", err)
	}
	for _, l := range links {
		if l.ActualState != "up" {
			t.Fatalf("link %s is %s: %s", l.Name, l.ActualState, l.Error)
		}
	}
	if len(links) != nodes-1 {
		t.Fatalf("%d links, want %d", len(links), nodes-1)
	}
	for k := range bench.Sample {
		from := ident.NamespaceName(chain.Name, fmt.Sprintf("r%d", k))
		if got, err := testbed.PingFrom(t.Context(), from, netip.MustParseAddr(bench.Addr(k, 2)), 2); err != nil || got != 2 {
			t.Fatalf("ping over link %d: %d/2 (%v)", k, got, err)
		}
	}

	cfgs := nextCfgs(t, c)
	start = time.Now()
	if out, err := c.CLI(t, "lab", "apply", "-f", file, "--timeout", "20m"); err != nil {
		t.Fatalf("apply again: %v\n%s", err, out)
	}
	d.again = time.Since(start)
	d.noWrite = nextCfgs(t, c) == cfgs

	start = time.Now()
	if out, err := c.CLI(t, "lab", "destroy", chain.Name, "--timeout", "20m"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	d.destroy = time.Since(start)
	for name, h := range c.Hosts {
		out, err := h.VSCtl(t.Context(), "--bare", "--columns=name", "list", "Port")
		if err != nil {
			t.Fatalf("ports of %s: %v", name, err)
		}
		if left := strings.Fields(strings.ReplaceAll(out, bench.Bridge, "")); len(left) > 0 {
			t.Fatalf("%s keeps %d ports after destroy", name, len(left))
		}
		if out, _ := h.Exec(t.Context(), "ip", "-o", "link", "show", "type", "vxlan"); strings.TrimSpace(out) != "" {
			t.Fatalf("%s keeps VXLAN devices after destroy:\n%s", name, out)
		}
	}
	names, err := netns.List()
	if err != nil {
		t.Fatalf("namespaces: %v", err)
	}
	for _, ns := range names {
		if strings.HasPrefix(ns, ident.NamespaceName(chain.Name, "")) {
			t.Fatalf("namespace %s left after destroy", ns)
		}
	}
	return d
}

// nextCfgs reads every host's next_cfg, which any bridge write raises.
func nextCfgs(t *benchTB, c *testbed.Cluster) string {
	var parts []string
	for _, name := range []string{"hostA", "hostB", "hostC", "hostD"} {
		if h, ok := c.Hosts[name]; ok {
			out, err := h.VSCtl(t.Context(), "get", "Open_vSwitch", ".", "next_cfg")
			if err != nil {
				t.Fatalf("next_cfg of %s: %v", name, err)
			}
			parts = append(parts, strings.TrimSpace(out))
		}
	}
	return strings.Join(parts, ",")
}

// chainBaseline makes the same chain with plain tools on fresh hosts.
func chainBaseline(t *benchTB, nodes int, hosts []string, hostOf func(int) string) time.Duration {
	bed := testbed.Start(t)
	hs := map[string]*testbed.Host{}
	ips := map[string]string{}
	for i, name := range hosts {
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		h, err := bed.AddHost(t.Context(), name, netip.MustParsePrefix(ip+"/24"))
		if err != nil {
			t.Fatalf("host %s: %v", name, err)
		}
		hs[name], ips[name] = h, ip
	}
	d, err := bench.ChainBaseline(t.Context(), bench.Chain{Name: bed.ID(), Nodes: nodes, HostOf: hostOf}, hs, ips)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return d
}
