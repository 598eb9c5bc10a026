package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// Addresses of the benchmark host and of its (absent) tunnel peer.
var (
	Local  = netip.MustParsePrefix("10.77.0.1/24")
	Remote = netip.MustParseAddr("10.77.0.2")
)

// Bridge is the bridge every scenario uses.
const Bridge = "netloom0"

// Tunnels returns n tunnels of lab "bench", with distinct VNIs (the
// formula's could collide among so many made-up links) and tags from the
// linked range of DESIGN §4, 2050 on: distinct up to 1950 tunnels, reused
// beyond. Tags are per host, so no host can hold more distinct links than
// that range; past it the tunnels measure scale, not a lab (tunnels that
// share a tag are bridged together).
func Tunnels(n int) []wire.DeclaredTunnel {
	ts := make([]wire.DeclaredTunnel, n)
	for i := range ts {
		link := ident.LinkName(fmt.Sprintf("r%d:eth1", i), fmt.Sprintf("s%d:eth1", i))
		ts[i] = wire.DeclaredTunnel{LinkID: link, LabID: "bench", VNI: 100000 + i, LocalIP: Local.Addr().String(),
			RemoteIP: Remote.String(), ExpectedVLAN: 2050 + i%1950, PortName: ident.PortName("bench", link), MTU: 1450}
	}
	return ts
}

// Plan is the driver change set that makes the tunnels.
func Plan(ts []wire.DeclaredTunnel) fabric.Plan {
	var p fabric.Plan
	for _, t := range ts {
		p.Devices = append(p.Devices, fabric.Device{Name: t.PortName, VNI: uint32(t.VNI), Local: Local.Addr(), Remote: Remote, MTU: t.MTU})
		p.AddPorts = append(p.AddPorts, fabric.Port{Name: t.PortName, Tag: t.ExpectedVLAN, Owner: fabric.Owner{Lab: t.LabID, Link: t.LinkID}})
	}
	return p
}

// NewHost builds a bed with one empty simulated host; close the bed after.
func NewHost(ctx context.Context, name string) (*testbed.Bed, *testbed.Host, error) {
	return NewHostWith(ctx, name, testbed.HostOptions{})
}

// NewHostWith is NewHost, with the host built as opts say: with
// UnderlayOnOVS, one whose tunnels can be OVS's own VXLAN ports.
func NewHostWith(ctx context.Context, name string, opts testbed.HostOptions) (*testbed.Bed, *testbed.Host, error) {
	bed, err := testbed.New(ctx, testbed.Config{Name: name})
	if err != nil {
		if bed != nil {
			bed.Close()
		}
		return nil, nil, err
	}
	h, err := bed.AddHostWith(ctx, "hostA", Local, opts)
	if err != nil {
		bed.Close()
		return nil, nil, err
	}
	return bed, h, nil
}

// Baseline makes the tunnels' devices and ports on h the plain way, one
// `ip -batch` and one `ovs-vsctl` transaction that waits for ovs-vswitchd,
// and returns how long that took.
func Baseline(ctx context.Context, h *testbed.Host, ts []wire.DeclaredTunnel) (time.Duration, error) {
	var batch strings.Builder
	vsctl := []string{"add-br", Bridge, "--", "set", "bridge", Bridge, "datapath_type=netdev", "fail_mode=standalone"}
	for _, t := range ts {
		fmt.Fprintf(&batch, "link add %s mtu %d up type vxlan id %d local %s remote %s dstport 4789 nolearning\n",
			t.PortName, t.MTU, t.VNI, t.LocalIP, t.RemoteIP)
		vsctl = append(vsctl, "--", "add-port", Bridge, t.PortName, fmt.Sprintf("tag=%d", t.ExpectedVLAN),
			"--", "set", "port", t.PortName, "external_ids:"+ident.OwnerKey+"="+ident.OwnerValue,
			"external_ids:"+ident.LabKey+"="+t.LabID, "external_ids:"+ident.LinkKey+"="+t.LinkID)
	}
	file := filepath.Join(h.Dir, "vxlan.batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := h.Exec(ctx, "ip", "-batch", file); err != nil {
		return 0, err
	}
	if _, err := h.VSCtl(ctx, vsctl...); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
