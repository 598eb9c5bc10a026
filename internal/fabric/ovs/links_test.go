package ovs

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/netloom/netloom/internal/fabric"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// TestLinkView checks that the link view reads what the kernel holds, the
// same as netlink.LinkList decodes it: each VXLAN device's tunnel, MTU and
// state, and every link's ifindex; first from its dump, then from the
// notifications of links made, renamed and deleted after it.
func TestLinkView(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, OVS and namespaces")
	}
	_, h, _ := newHost(t)
	ipv4 := fabric.Device{Name: "vxa", VNI: 42, Local: local.Addr(), Remote: remote, DstPort: 4789, MTU: 1450, Up: true}
	ipv6 := fabric.Device{Name: "vxb", VNI: 16777215, Local: netip.MustParseAddr("fd00::1"), Remote: netip.MustParseAddr("fd00::2"),
		DstPort: 8472, MTU: 1400}
	v := &linkView{netns: h.Netns}
	t.Cleanup(v.Close)
	tests := []struct {
		name string
		ip   [][]string               // ip commands run before the read
		want map[string]fabric.Device // the VXLAN devices, Ifindex aside
	}{
		{name: "dump",
			ip: [][]string{
				{"link", "add", "vxa", "mtu", "1450", "type", "vxlan", "id", "42", "local", "10.77.0.1", "remote", "10.77.0.2", "dstport", "4789"},
				{"link", "set", "vxa", "up"},
				{"link", "add", "vxc", "type", "veth", "peer", "name", "vxd"},
			},
			want: map[string]fabric.Device{"vxa": ipv4}},
		{name: "made: ipv6, down, other port",
			ip: [][]string{
				{"link", "add", "vxb", "mtu", "1400", "type", "vxlan", "id", "16777215", "local", "fd00::1", "remote", "fd00::2", "dstport", "8472"},
			},
			want: map[string]fabric.Device{"vxa": ipv4, "vxb": ipv6}},
		{name: "renamed, set down, deleted",
			ip: [][]string{
				{"link", "set", "vxa", "down"},
				{"link", "set", "vxa", "name", "vxr"},
				{"link", "del", "vxc"},
			},
			want: map[string]fabric.Device{"vxr": func() fabric.Device { d := ipv4; d.Name, d.Up = "vxr", false; return d }(), "vxb": ipv6}},
		{name: "nothing changed", want: map[string]fabric.Device{"vxr": func() fabric.Device { d := ipv4; d.Name, d.Up = "vxr", false; return d }(), "vxb": ipv6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, args := range tt.ip {
				if out, err := h.Exec(t.Context(), "ip", args...); err != nil {
					t.Fatalf("ip %v: %v: %s", args, err, out)
				}
			}
			devs, all, err := v.read()
			if err != nil {
				t.Fatal(err)
			}
			var full []netlink.Link
			err = nlns.WithHandle(h.Netns, func(nh *netlink.Handle) (err error) {
				full, err = nlns.LinkList(nh)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			wantAll := map[string]int{}
			for _, l := range full {
				wantAll[l.Attrs().Name] = l.Attrs().Index
			}
			if diff := cmp.Diff(wantAll, all); diff != "" {
				t.Errorf("links by name (-LinkList +view):\n%s", diff)
			}
			want := map[string]fabric.Device{}
			for name, d := range tt.want {
				d.Ifindex = wantAll[name]
				want[name] = d
			}
			if diff := cmp.Diff(want, devs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("VXLAN devices (-want +view):\n%s", diff)
			}
		})
	}
}
