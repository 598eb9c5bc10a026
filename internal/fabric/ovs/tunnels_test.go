package ovs

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/testbed"
)

// TestOVSTunnels applies 1000 tunnels as OVS VXLAN interfaces in one
// transaction, checks that no kernel device was made and that userspace
// TSO stays off, then changes a remote in place, deletes, and reads them
// back with a new driver.
func TestOVSTunnels(t *testing.T) {
	bed := testbed.Start(t)
	h, err := bed.AddHost(t.Context(), "hostA", local)
	if err != nil {
		t.Fatal(err)
	}
	open := func() *Driver {
		return newDriver(t, h, func(c *Config) { c.Datapath, c.Tunnels = DatapathNetdev, TunnelsOVS })
	}
	d := open()
	if tso, err := h.VSCtl(t.Context(), "get", "Open_vSwitch", ".", "other_config"); err != nil || strings.Contains(tso, tsoKey+"=\"true\"") {
		t.Errorf("other_config = %s (%v): userspace TSO on, which drops tunnelled packets with offloads", tso, err)
	}
	devs, ports := tunnels("lab-1", 1000)
	cfg0 := nextCfg(t, h)
	start := time.Now()
	if err := d.Apply(applyCtx(t), fabric.Plan{Devices: devs, AddPorts: ports}); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied 1000 OVS tunnels in %v", time.Since(start))
	if got := nextCfg(t, h) - cfg0; got != 1 {
		t.Errorf("1000 tunnels took %d transactions, want 1", got)
	}
	check := func(t *testing.T, d *Driver, devs []fabric.Device) fabric.Observed {
		t.Helper()
		obs, err := d.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(obs.Devices) != len(devs) {
			t.Errorf("%d tunnels observed, want %d", len(obs.Devices), len(devs))
		}
		for _, want := range devs {
			got, ok := obs.Devices[want.Name]
			p := obs.Ports[want.Name]
			switch {
			case !ok:
				t.Errorf("tunnel %s missing", want.Name)
			case !got.SameTunnel(want) || got.MTU != 0 || got.MaxMTU != 1450 || !got.Up:
				t.Errorf("tunnel %s = %+v, want %+v, no MTU of its own, carrying up to 1450 over the 1500 underlay, up", want.Name, got, want)
			case p.Type != vxlanType || p.Ofport <= 0 || p.Error != "":
				t.Errorf("port %s: type %q ofport %d error %q, want an opened vxlan interface", want.Name, p.Type, p.Ofport, p.Error)
			case obs.Links[want.Name] != 0:
				t.Errorf("tunnel %s made a kernel link", want.Name)
			}
		}
		return obs
	}
	check(t, d, devs)

	t.Run("new remote in place, delete, one transaction", func(t *testing.T) {
		before, err := d.Observe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		devs[0].Remote = netip.MustParseAddr("10.77.0.3")
		cfg0 := nextCfg(t, h)
		err = d.Apply(applyCtx(t), fabric.Plan{
			Devices:       devs[:1],
			DeletePorts:   []string{ports[998].Name, ports[999].Name},
			DeleteDevices: []string{devs[998].Name, devs[999].Name},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := nextCfg(t, h) - cfg0; got != 1 {
			t.Errorf("the change took %d transactions, want 1", got)
		}
		devs, ports = devs[:998], ports[:998]
		obs := check(t, d, devs)
		if got, was := obs.Ports[devs[0].Name].Ofport, before.Ports[devs[0].Name].Ofport; got != was {
			t.Errorf("tunnel with a new remote reopened: ofport %d → %d, want it changed in place", was, got)
		}
	})

	t.Run("restarted driver reads them back", func(t *testing.T) {
		d.Close()
		check(t, open(), devs)
	})
}
