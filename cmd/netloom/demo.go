package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/controller/client"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// demoLab is the sample lab: a same-host and a cross-host link, addresses
// set by exec as a containerlab user would.
const demoLab = `name: netloom-demo
topology:
  defaults: {kind: linux}
  nodes:
    r1:
      host: hostA
      exec: ["ip addr add 192.168.10.1/24 dev eth1"]
    r2:
      host: hostA
      exec: ["ip addr add 192.168.10.2/24 dev eth1", "ip addr add 192.168.20.2/24 dev eth2"]
    r3:
      host: hostB
      exec: ["ip addr add 192.168.20.3/24 dev eth1", "ip addr add 192.168.10.3/24 dev eth1"]
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]   # same-host: one shared tag on hostA
    - endpoints: ["r2:eth2", "r3:eth1"]   # cross-host: a VXLAN tunnel hostA <-> hostB
`

const demoLabName = "netloom-demo"

func newDemoCmd(_ *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on this machine: simulated hosts, controller, agents, a lab, traffic, a repair",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout())
		},
	}
}

// demo holds the parts the demo started.
type demo struct {
	out   io.Writer
	bed   *testbed.Bed
	hosts map[string]*testbed.Host
	api   *client.Client
}

func (d *demo) step(format string, args ...any) { fmt.Fprintf(d.out, "==> "+format+"\n", args...) }
func (d *demo) say(format string, args ...any)  { fmt.Fprintf(d.out, "    "+format+"\n", args...) }

func runDemo(ctx context.Context, out io.Writer) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	d := &demo{out: out, hosts: map[string]*testbed.Host{}}
	d.step("building two simulated hosts, each a network namespace with its own Open vSwitch, and a controller machine")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	d.bed, err = testbed.New(ctx, testbed.Config{Name: "demo", Log: quiet})
	if d.bed != nil {
		defer func() { err = errors.Join(err, d.teardown()) }()
	}
	if err != nil {
		return err
	}
	ctl, err := d.bed.AddMachine(ctx, "ctl", netip.MustParsePrefix("10.77.0.100/24"))
	if err != nil {
		return err
	}
	for _, h := range []struct{ name, addr string }{{"hostA", "10.77.0.1/24"}, {"hostB", "10.77.0.2/24"}} {
		if d.hosts[h.name], err = d.bed.AddHost(ctx, h.name, netip.MustParsePrefix(h.addr)); err != nil {
			return err
		}
		d.say("%s: namespace %s, underlay %s, ovsdb %s", h.name, d.hosts[h.name].Netns, h.addr, d.hosts[h.name].OVSDB())
	}
	dir := d.bed.Dir()
	agentTok, apiTok := filepath.Join(dir, "agent-token"), filepath.Join(dir, "api-token")
	for _, f := range []struct{ path, tok string }{{agentTok, "demo-agent-" + d.bed.ID()}, {apiTok, "demo-api-" + d.bed.ID()}} {
		if err := os.WriteFile(f.path, []byte(f.tok), 0o600); err != nil {
			return err
		}
	}

	d.step("starting the controller (SQLite in %s) and one agent per host", dir)
	if _, err := ctl.Start(ctx, exe, "controller", "--listen", "10.77.0.100:7400", "--db", "sqlite://"+filepath.Join(dir, "netloom.db"),
		"--agent-token-file", agentTok, "--api-token-file", apiTok, "--reconcile-interval", "10s", "--converge-every", "1"); err != nil {
		return err
	}
	for name, h := range d.hosts {
		if _, err := h.Start(ctx, exe, "agent", "--name", name, "--listen", h.Underlay.Addr().String()+":7401",
			"--data-ip", h.Underlay.Addr().String(), "--controller", "http://10.77.0.100:7400",
			"--state-dir", filepath.Join(h.Dir, "agent"), "--ovsdb", h.OVSDB(), "--token-file", agentTok); err != nil {
			return err
		}
	}
	d.api = client.New("http://10.77.0.100:7400", "demo-api-"+d.bed.ID(), ctl.HTTPClient(), 0)
	if err := d.waitHosts(ctx); err != nil {
		return err
	}

	d.step("applying the sample lab: r1, r2 on hostA, r3 on hostB; r1-r2 same-host, r2-r3 cross-host")
	for _, line := range strings.Split(strings.TrimSpace(demoLab), "\n") {
		d.say("%s", line)
	}
	if _, err := d.api.Apply(ctx, "demo.yaml", []byte(demoLab), nil, false); err != nil {
		return err
	}
	v, err := d.api.WaitLab(ctx, demoLabName, 100*time.Millisecond, func(wire.LabView) {})
	if err != nil {
		return err
	}
	if v.State != "running" {
		return fmt.Errorf("the lab did not deploy: %s: %s", v.State, v.StateError)
	}
	for _, l := range v.Links {
		kind := "same-host, tag " + fmt.Sprint(*l.SourceTag)
		if l.CrossHost {
			kind = fmt.Sprintf("cross-host, VNI %d, port %s, tags %d on %s and %d on %s", *l.VNI, l.Tunnel.PortName, *l.SourceTag, l.SourceHost, *l.TargetTag, l.TargetHost)
		}
		d.say("link %s is %s (%s)", l.Name, l.ActualState, kind)
	}

	d.step("proving traffic: packets cross both links, and stay off links they are not on")
	for _, p := range []struct {
		from, to, what string
		want           bool
	}{
		{"r1", "192.168.10.2", "r1 -> r2 over the same-host link", true},
		{"r2", "192.168.20.3", "r2 -> r3 over the VXLAN tunnel between the hosts", true},
		{"r1", "192.168.10.3", "r1 -> r3's address on another link (must fail)", false},
	} {
		got, err := testbed.PingFrom(ctx, ident.NamespaceName(demoLabName, p.from), netip.MustParseAddr(p.to), 3)
		if err != nil {
			return err
		}
		d.say("%s: %d/3 replies", p.what, got)
		if (got == 3) != p.want {
			return fmt.Errorf("%s: %d/3 replies", p.what, got)
		}
	}

	var tunnel string
	for _, l := range v.Links {
		if l.CrossHost {
			tunnel = l.Tunnel.PortName
		}
	}
	d.step("drift: deleting the tunnel device %s on hostB by hand (ip link del)", tunnel)
	if _, err := d.hosts["hostB"].Exec(ctx, "ip", "link", "del", tunnel); err != nil {
		return err
	}
	start := time.Now()
	for {
		if _, err := d.hosts["hostB"].Exec(ctx, "ip", "link", "show", tunnel); err == nil {
			got, _ := testbed.PingFrom(ctx, ident.NamespaceName(demoLabName, "r2"), netip.MustParseAddr("192.168.20.3"), 1)
			if got == 1 {
				break
			}
		}
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("the tunnel was not repaired within 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.say("repaired by hostB's agent without the controller in %v; r2 -> r3 passes again", time.Since(start).Round(time.Millisecond))
	return nil
}

func (d *demo) waitHosts(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		hosts, err := d.api.Hosts(ctx)
		online := 0
		for _, h := range hosts {
			if h.Status == "online" {
				online++
			}
		}
		if err == nil && online == 2 {
			for _, h := range hosts {
				d.say("agent %s registered: %s, data IP %s", h.Name, h.Address, h.DataIP)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agents not registered within 60 s (%v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// teardown destroys the lab and removes every host, process and file the
// demo made; it runs on success, failure and Ctrl-C alike.
func (d *demo) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d.step("tearing everything down")
	var errs []error
	if d.api != nil {
		if _, err := d.api.Destroy(ctx, demoLabName); err == nil {
			d.say("lab destroyed on both hosts")
			errs = append(errs, d.api.Delete(ctx, demoLabName))
		}
	}
	// Whatever the controller could not reach: the nodes' namespaces.
	for _, n := range []string{"r1", "r2", "r3"} {
		errs = append(errs, netns.Delete(ident.NamespaceName(demoLabName, n)))
	}
	errs = append(errs, d.bed.Close())
	left, err := d.bed.Residue()
	errs = append(errs, err)
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, ", ")))
	} else {
		d.say("simulated hosts, daemons and files removed; nothing left (bed %s)", d.bed.ID())
	}
	return errors.Join(errs...)
}
