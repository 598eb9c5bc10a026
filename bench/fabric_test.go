package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

const (
	tunnelCount = 1000
	bridge      = "netloom0"
)

var (
	local  = netip.MustParsePrefix("10.77.0.1/24")
	remote = netip.MustParseAddr("10.77.0.2")
)

// tunnel is one of the benchmark's tunnels.
type tunnel struct {
	name string
	vni  uint32
	tag  int
	lab  string
	link string
}

func tunnels() []tunnel {
	ts := make([]tunnel, tunnelCount)
	for i := range ts {
		link := ident.LinkName(fmt.Sprintf("r%d:eth1", i), fmt.Sprintf("s%d:eth1", i))
		ts[i] = tunnel{name: ident.PortName("bench", link), vni: uint32(10000 + i), tag: 2050 + i%1950, lab: "bench", link: link}
	}
	return ts
}

// freshHost builds a bed with one empty host, outside the timer.
func freshHost(b *testing.B) (*testbed.Host, func()) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	bed, err := testbed.New(b.Context(), testbed.Config{Name: b.Name()})
	if err != nil {
		if bed != nil {
			bed.Close()
		}
		b.Fatal(err)
	}
	h, err := bed.AddHost(b.Context(), "hostA", local)
	if err != nil {
		bed.Close()
		b.Fatal(err)
	}
	return h, func() {
		b.StopTimer()
		defer b.StartTimer()
		if err := bed.Close(); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkDeclare1000Tunnels times the driver applying 1000 new VXLAN
// devices and their tagged, marked ports on an empty host, as one plan.
func BenchmarkDeclare1000Tunnels(b *testing.B) {
	ts := tunnels()
	var plan fabric.Plan
	for _, t := range ts {
		plan.Devices = append(plan.Devices, fabric.Device{Name: t.name, VNI: t.vni, Local: local.Addr(), Remote: remote, MTU: 1450})
		plan.AddPorts = append(plan.AddPorts, fabric.Port{Name: t.name, Tag: t.tag, Owner: fabric.Owner{Lab: t.lab, Link: t.link}})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range b.N {
		h, done := freshHost(b)
		ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
		b.StopTimer()
		d, err := ovs.New(ctx, ovs.Config{OVSDB: h.OVSDB(), Bridge: bridge, Netns: h.Netns}, log)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.Apply(ctx, plan); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Close()
		cancel()
		done()
	}
}

// BenchmarkBaseline1000Tunnels times the plain way for the same devices and
// ports: one `ip -batch` and one `ovs-vsctl` transaction that waits for
// ovs-vswitchd.
func BenchmarkBaseline1000Tunnels(b *testing.B) {
	ts := tunnels()
	var batch strings.Builder
	vsctl := []string{"add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev", "fail_mode=standalone"}
	for _, t := range ts {
		fmt.Fprintf(&batch, "link add %s mtu 1450 up type vxlan id %d local %s remote %s dstport 4789 nolearning\n",
			t.name, t.vni, local.Addr(), remote)
		vsctl = append(vsctl, "--", "add-port", bridge, t.name, fmt.Sprintf("tag=%d", t.tag),
			"--", "set", "port", t.name, "external_ids:"+ident.OwnerKey+"="+ident.OwnerValue,
			"external_ids:"+ident.LabKey+"="+t.lab, "external_ids:"+ident.LinkKey+"="+t.link)
	}
	batchFile := filepath.Join(b.TempDir(), "vxlan.batch")
	if err := os.WriteFile(batchFile, []byte(batch.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		h, done := freshHost(b)
		if _, err := h.Exec(b.Context(), "ip", "-batch", batchFile); err != nil {
			b.Fatal(err)
		}
		if _, err := h.VSCtl(b.Context(), vsctl...); err != nil {
			b.Fatal(err)
		}
		done()
	}
}
