package ovs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

const bridgeName = "netloom0"

var (
	local  = netip.MustParsePrefix("10.77.0.1/24")
	remote = netip.MustParseAddr("10.77.0.2")
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHost builds a bed with one host and a driver on it.
func newHost(t *testing.T) (*testbed.Bed, *testbed.Host, *Driver) {
	t.Helper()
	bed := testbed.Start(t)
	h, err := bed.AddHost(t.Context(), "hostA", local)
	if err != nil {
		t.Fatal(err)
	}
	return bed, h, newDriver(t, h)
}

// newDriver starts a driver on h, its configuration changed by each of
// opts.
func newDriver(t *testing.T, h *testbed.Host, opts ...func(*Config)) *Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := Config{OVSDB: h.OVSDB(), Bridge: bridgeName, Datapath: DatapathAuto, Netns: h.Netns}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := New(ctx, cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// tunnels returns n tunnel devices and their tagged, marked ports.
func tunnels(lab string, n int) ([]fabric.Device, []fabric.Port) {
	devs := make([]fabric.Device, n)
	ports := make([]fabric.Port, n)
	for i := range n {
		link := ident.LinkName(fmt.Sprintf("r%d:eth1", i), fmt.Sprintf("s%d:eth1", i))
		name := ident.PortName(lab, link)
		devs[i] = fabric.Device{Name: name, VNI: uint32(10000 + i), Local: local.Addr(), Remote: remote, MTU: 1450}
		ports[i] = fabric.Port{Name: name, Tag: 2050 + i%1950, Owner: fabric.Owner{Lab: lab, Link: link}}
	}
	return devs, ports
}

func applyCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkObserved compares what the host holds with the devices and ports
// applied.
func checkObserved(t *testing.T, obs fabric.Observed, devs []fabric.Device, ports []fabric.Port) {
	t.Helper()
	if !obs.BridgeExists {
		t.Fatal("bridge missing")
	}
	bad := 0
	for i, want := range ports {
		got, ok := obs.Ports[want.Name]
		dev, devOK := obs.Devices[want.Name]
		switch {
		case !ok:
			t.Errorf("port %s missing", want.Name)
		case got.Tag != want.Tag || got.Owner != want.Owner:
			t.Errorf("port %s: tag %d owner %+v, want %d %+v", want.Name, got.Tag, got.Owner, want.Tag, want.Owner)
		case got.Ofport <= 0 || got.Error != "":
			t.Errorf("port %s not opened by ovs-vswitchd: ofport %d error %q", want.Name, got.Ofport, got.Error)
		case !devOK:
			t.Errorf("device %s missing", want.Name)
		case got.Ifindex != dev.Ifindex:
			t.Errorf("port %s: ifindex %d, device's %d", want.Name, got.Ifindex, dev.Ifindex)
		case !dev.SameTunnel(devs[i]) || dev.MTU != devs[i].MTU || !dev.Up:
			t.Errorf("device %s = %+v, want %+v up", want.Name, dev, devs[i])
		default:
			continue
		}
		if bad++; bad > 5 {
			t.Fatal("too many differences")
		}
	}
}

func nextCfg(t *testing.T, h *testbed.Host) int {
	t.Helper()
	out, err := h.VSCtl(t.Context(), "get", "Open_vSwitch", ".", "next_cfg")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestScale applies 1000 tunnels as one change set, reads them back, retags
// 500 of them in one transaction, and checks that a restarted driver adopts
// every device and recognises its ports while leaving an unmarked one alone.
func TestScale(t *testing.T) {
	_, h, d := newHost(t)
	devs, ports := tunnels("lab-1", 1000)

	cfg0 := nextCfg(t, h)
	start := time.Now()
	if err := d.Apply(applyCtx(t), fabric.Plan{Devices: devs, AddPorts: ports}); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied 1000 tunnels in %v", time.Since(start))
	if got := nextCfg(t, h) - cfg0; got != 1 {
		t.Errorf("1000 tunnels took %d transactions, want 1", got)
	}
	obs, err := d.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkObserved(t, obs, devs, ports)

	t.Run("retag 500 in one transaction", func(t *testing.T) {
		retag := map[string]int{}
		for i := range 500 {
			ports[i].Tag = 100 + i
			retag[ports[i].Name] = ports[i].Tag
		}
		cfg0 := nextCfg(t, h)
		if err := d.Apply(applyCtx(t), fabric.Plan{Retag: retag}); err != nil {
			t.Fatal(err)
		}
		if got := nextCfg(t, h) - cfg0; got != 1 {
			t.Errorf("retag of 500 took %d transactions, want 1", got)
		}
		obs, err := d.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkObserved(t, obs, devs, ports)
	})

	t.Run("restarted driver adopts and recognises", func(t *testing.T) {
		if _, err := h.VSCtl(t.Context(), "add-port", bridgeName, "handmade", "tag=77", "--", "set", "interface", "handmade", "type=internal"); err != nil {
			t.Fatal(err)
		}
		before, err := d.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		d2 := newDriver(t, h)
		// The same devices declared again are adopted: no ifindex changes.
		if err := d2.Apply(applyCtx(t), fabric.Plan{Devices: devs}); err != nil {
			t.Fatal(err)
		}
		after, err := d2.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkObserved(t, after, devs, ports)
		for name, dev := range before.Devices {
			if after.Devices[name].Ifindex != dev.Ifindex {
				t.Errorf("device %s recreated: ifindex %d → %d", name, dev.Ifindex, after.Devices[name].Ifindex)
			}
		}
		hm, ok := after.Ports["handmade"]
		if !ok || hm.Owned() || hm.Tag != 77 {
			t.Fatalf("hand-made port = %+v (present %v), want unowned with tag 77", hm, ok)
		}
		for _, p := range []fabric.Plan{
			{DeletePorts: []string{"handmade"}},
			{Retag: map[string]int{"handmade": 5}},
			{SetMTU: map[string]int{"handmade": 1400}},
		} {
			if err := d2.Apply(applyCtx(t), p); !errors.Is(err, errNotOwned) {
				t.Errorf("Apply(%+v) on an unowned port: err %v, want errNotOwned", p, err)
			}
		}
		last, err := d2.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := last.Ports["handmade"]; got != hm {
			t.Errorf("hand-made port changed: %+v → %+v", hm, got)
		}
	})
}

// TestDeleteAndRecreate deletes tunnels and recreates one whose remote
// changed, in one plan each.
func TestDeleteAndRecreate(t *testing.T) {
	_, _, d := newHost(t)
	devs, ports := tunnels("lab-2", 4)
	if err := d.Apply(applyCtx(t), fabric.Plan{Devices: devs, AddPorts: ports}); err != nil {
		t.Fatal(err)
	}
	before, err := d.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	devs[0].Remote = netip.MustParseAddr("10.77.0.3") // drift in remote → recreate
	devs[1].MTU = 1400                                // drift in MTU → in place
	err = d.Apply(applyCtx(t), fabric.Plan{
		Devices:       devs[:2],
		DeletePorts:   []string{ports[2].Name, ports[3].Name},
		DeleteDevices: []string{devs[2].Name, devs[3].Name},
	})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := d.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Ports) != 2 || len(obs.Devices) != 2 {
		t.Fatalf("after delete: ports %v devices %v, want 2 of each", obs.Ports, obs.Devices)
	}
	if got := obs.Devices[devs[0].Name]; got.Remote != devs[0].Remote || got.Ifindex == before.Devices[devs[0].Name].Ifindex {
		t.Errorf("device with new remote = %+v, want recreated with remote %v", got, devs[0].Remote)
	}
	if got := obs.Devices[devs[1].Name]; got.MTU != 1400 || got.Ifindex != before.Devices[devs[1].Name].Ifindex {
		t.Errorf("device with new MTU = %+v, want MTU 1400 and the same ifindex", got)
	}
	// OVS must reopen the recreated device under the same port.
	err = waitFor(t, 5*time.Second, func() (bool, error) {
		obs, err := d.Observe(t.Context())
		p := obs.Ports[devs[0].Name]
		return err == nil && p.Ifindex == obs.Devices[devs[0].Name].Ifindex && p.Ofport > 0, err
	})
	if err != nil {
		t.Errorf("recreated device not reopened by ovs-vswitchd: %v", err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, error)) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestObserveWithoutOVSDB stops ovsdb-server: reads and changes must fail,
// never report an empty bridge.
func TestObserveWithoutOVSDB(t *testing.T) {
	_, h, d := newHost(t)
	devs, ports := tunnels("lab-3", 2)
	if err := d.Apply(applyCtx(t), fabric.Plan{Devices: devs, AddPorts: ports}); err != nil {
		t.Fatal(err)
	}
	if err := h.StopDaemon("ovsdb-server"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	obs, err := d.Observe(ctx)
	if err == nil {
		t.Fatalf("Observe with ovsdb-server stopped returned %d ports and no error", len(obs.Ports))
	}
	if err := d.Apply(ctx, fabric.Plan{DeletePorts: []string{ports[0].Name}}); err == nil {
		t.Fatal("Apply with ovsdb-server stopped succeeded")
	}
}

// TestWatch deletes a port and a device by hand and expects the events
// within a second.
func TestWatch(t *testing.T) {
	_, h, d := newHost(t)
	devs, ports := tunnels("lab-4", 2)
	if err := d.Apply(applyCtx(t), fabric.Plan{Devices: devs, AddPorts: ports}); err != nil {
		t.Fatal(err)
	}
	events := make(chan fabric.Event, 1024)
	ctx, cancel := context.WithCancel(t.Context())
	werr := make(chan error, 1)
	go func() { werr <- d.Watch(ctx, func(e fabric.Event) { events <- e }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-werr; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	// Let the subscription start: an event about a fresh marker proves it.
	// A marker made before the watch began makes none, so it is made
	// again, another tag each time, until one is seen.
	started := false
	for i := 0; i < 50 && !started; i++ {
		if err := d.Apply(applyCtx(t), fabric.Plan{Retag: map[string]int{ports[1].Name: 3999 - i%2}}); err != nil {
			t.Fatal(err)
		}
		wait := time.After(100 * time.Millisecond)
	drain:
		for {
			select {
			case e := <-events:
				if e.Kind == fabric.PortChanged {
					started = true
					break drain
				}
			case <-wait:
				break drain
			}
		}
	}
	if !started {
		t.Fatal("the watch reported no port change in 5 s of retagging")
	}

	tests := []struct {
		name string
		kind fabric.EventKind
		port string
		do   func() error
	}{
		{"ovs-vsctl del-port", fabric.PortDeleted, ports[0].Name, func() error {
			_, err := h.VSCtl(t.Context(), "del-port", bridgeName, ports[0].Name)
			return err
		}},
		{"ip link del", fabric.DeviceDeleted, devs[1].Name, func() error {
			_, err := h.Exec(t.Context(), "ip", "link", "del", devs[1].Name)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			waitEvent(t, events, tt.kind, tt.port, func() {
				if err := tt.do(); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s %s seen after %v", tt.kind, tt.port, time.Since(start))
		})
	}
}

// waitEvent runs do and waits at most 1 s for an event of kind about name
// ("" for any name).
func waitEvent(t *testing.T, events <-chan fabric.Event, kind fabric.EventKind, name string, do func()) {
	t.Helper()
	do()
	timeout := time.After(time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == kind && (name == "" || e.Name == name) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event for %q within 1s", kind, name)
		}
	}
}

// TestConformance runs the fabric.Driver contract against real OVS, as the
// fake runs it in fabrictest.
func TestConformance(t *testing.T) {
	fabrictest.RunConformance(t, func(t *testing.T) fabrictest.Host {
		_, h, d := newHost(t)
		return fabrictest.Host{Driver: d, AddForeignPort: func(ctx context.Context, name string) error {
			_, err := h.VSCtl(ctx, "add-port", bridgeName, name, "tag=5", "--", "set", "interface", name, "type=internal")
			return err
		}}
	})
}

// TestObserveAgain: Observe returns what it read before only while nothing
// changed; a change by hand to a port or to a device shows in the next
// Observe once its notification is in, and Apply's own at once.
func TestObserveAgain(t *testing.T) {
	_, h, d := newHost(t)
	devs, ports := tunnels("lab-5", 2)
	if err := d.Apply(applyCtx(t), fabric.Plan{Devices: devs, AddPorts: ports}); err != nil {
		t.Fatal(err)
	}
	observe := func() fabric.Observed {
		obs, err := d.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return obs
	}
	if got := observe().Ports[ports[0].Name].Tag; got != ports[0].Tag {
		t.Fatalf("after Apply: tag %d, want %d", got, ports[0].Tag)
	}
	for _, tt := range []struct {
		name   string
		change func() error
		seen   func(fabric.Observed) bool
	}{
		{"port retagged by hand", func() error {
			_, err := h.VSCtl(t.Context(), "set", "port", ports[0].Name, "tag=7")
			return err
		}, func(o fabric.Observed) bool { return o.Ports[ports[0].Name].Tag == 7 }},
		{"device deleted by hand", func() error {
			_, err := h.Exec(t.Context(), "ip", "link", "del", devs[1].Name)
			return err
		}, func(o fabric.Observed) bool { _, ok := o.Devices[devs[1].Name]; return !ok }},
		{"Apply", func() error {
			return d.Apply(applyCtx(t), fabric.Plan{Retag: map[string]int{ports[0].Name: 9}})
		}, func(o fabric.Observed) bool { return o.Ports[ports[0].Name].Tag == 9 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.seen(observe()) {
				t.Fatal("seen before the change")
			}
			if err := tt.change(); err != nil {
				t.Fatal(err)
			}
			if tt.name == "Apply" {
				if !tt.seen(observe()) {
					t.Fatal("Apply's change not seen by the next Observe")
				}
				return
			}
			if err := waitFor(t, time.Second, func() (bool, error) { return tt.seen(observe()), nil }); err != nil {
				t.Fatalf("change not seen within 1 s: %v", err)
			}
		})
	}
}
