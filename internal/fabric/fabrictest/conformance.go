package fabrictest

import (
	"context"
	"net/netip"
	"testing"

	"github.com/netloom/netloom/internal/fabric"
)

// Host is what RunConformance needs of a host under test: its driver, and a
// way to put a port there behind the driver's back.
type Host struct {
	Driver fabric.Driver
	// AddForeignPort adds a port without netloom's marks, as an operator
	// would.
	AddForeignPort func(ctx context.Context, name string) error
}

// RunConformance checks that a driver keeps the fabric.Driver contract; the
// fake and every real driver run it, so the fake's answers can be trusted
// in the agent's unit tests. newHost returns an empty host.
func RunConformance(t *testing.T, newHost func(t *testing.T) Host) {
	local, remote := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	dev := func(name string, vni uint32) fabric.Device {
		return fabric.Device{Name: name, VNI: vni, Local: local, Remote: remote, MTU: 1450}
	}
	owner := fabric.Owner{Lab: "lab", Link: "a:eth1-b:eth1"}
	t.Run("apply then observe", func(t *testing.T) {
		h := newHost(t)
		ctx := t.Context()
		obs, err := h.Driver.Observe(ctx)
		if err != nil || !obs.BridgeExists || len(obs.Ports) != 0 {
			t.Fatalf("empty host: %+v, %v", obs, err)
		}
		plan := fabric.Plan{Devices: []fabric.Device{dev("vxlan-c0000001", 5001), dev("vxlan-c0000002", 5002)},
			AddPorts: []fabric.Port{{Name: "vxlan-c0000001", Tag: 2050, Owner: owner}, {Name: "vxlan-c0000002", Tag: 2051, Owner: owner}}}
		if err := h.Driver.Apply(ctx, plan); err != nil {
			t.Fatal(err)
		}
		obs, err = h.Driver.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range plan.AddPorts {
			got := obs.Ports[p.Name]
			if got.Tag != p.Tag || got.Owner != owner || !got.Owned() {
				t.Errorf("port %s = %+v", p.Name, got)
			}
			d := obs.Devices[p.Name]
			if !d.SameTunnel(dev(p.Name, d.VNI)) || d.MTU != 1450 || !d.Up || obs.Links[p.Name] != d.Ifindex {
				t.Errorf("device %s = %+v", p.Name, d)
			}
		}
	})
	t.Run("retag, MTU in place, recreate on a new remote, delete", func(t *testing.T) {
		h := newHost(t)
		ctx := t.Context()
		d1, d2 := dev("vxlan-c0000003", 5003), dev("vxlan-c0000004", 5004)
		err := h.Driver.Apply(ctx, fabric.Plan{Devices: []fabric.Device{d1, d2},
			AddPorts: []fabric.Port{{Name: d1.Name, Tag: 2050, Owner: owner}, {Name: d2.Name, Tag: 2050, Owner: owner}}})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := h.Driver.Observe(ctx)
		d1.MTU = 1400
		d2.Remote = netip.MustParseAddr("10.77.0.3")
		if err := h.Driver.Apply(ctx, fabric.Plan{Devices: []fabric.Device{d1, d2}, Retag: map[string]int{d1.Name: 3000}}); err != nil {
			t.Fatal(err)
		}
		after, _ := h.Driver.Observe(ctx)
		if p := after.Ports[d1.Name]; p.Tag != 3000 {
			t.Errorf("retag: %+v", p)
		}
		if got := after.Devices[d1.Name]; got.MTU != 1400 || got.Ifindex != before.Devices[d1.Name].Ifindex {
			t.Errorf("MTU change recreated or missed the device: %+v (was %+v)", got, before.Devices[d1.Name])
		}
		if got := after.Devices[d2.Name]; got.Remote != d2.Remote || got.Ifindex == before.Devices[d2.Name].Ifindex {
			t.Errorf("new remote not recreated: %+v (was %+v)", got, before.Devices[d2.Name])
		}
		if _, ok := after.Ports[d2.Name]; !ok {
			t.Errorf("the recreated device lost its port")
		}
		if err := h.Driver.Apply(ctx, fabric.Plan{DeletePorts: []string{d1.Name}, DeleteDevices: []string{d1.Name}}); err != nil {
			t.Fatal(err)
		}
		last, _ := h.Driver.Observe(ctx)
		if _, ok := last.Ports[d1.Name]; ok {
			t.Error("deleted port still there")
		}
		if _, ok := last.Devices[d1.Name]; ok {
			t.Error("deleted device still there")
		}
	})
	t.Run("a foreign port is never touched", func(t *testing.T) {
		h := newHost(t)
		ctx := t.Context()
		if err := h.AddForeignPort(ctx, "foreign0"); err != nil {
			t.Fatal(err)
		}
		obs, _ := h.Driver.Observe(ctx)
		if p, ok := obs.Ports["foreign0"]; !ok || p.Owned() {
			t.Fatalf("foreign port %+v (present %v): want present and unowned", p, ok)
		}
		for _, p := range []fabric.Plan{{DeletePorts: []string{"foreign0"}}, {Retag: map[string]int{"foreign0": 9}}} {
			if err := h.Driver.Apply(ctx, p); err == nil {
				t.Errorf("Apply(%+v) on a foreign port succeeded", p)
			}
		}
		if after, _ := h.Driver.Observe(ctx); after.Ports["foreign0"] != obs.Ports["foreign0"] {
			t.Error("the foreign port changed")
		}
	})
}
