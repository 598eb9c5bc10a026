package ovs

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/netloom/netloom/internal/fabric"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// TestListLinks checks that the lean dump reads what the kernel holds: each
// VXLAN device's tunnel, MTU and state, and every link's ifindex, the same
// as netlink.LinkList decodes them.
func TestListLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, OVS and namespaces")
	}
	_, h, _ := newHost(t)
	tests := []struct {
		name string
		add  []string // ip arguments that make the link
		up   bool
		want *fabric.Device // nil: not a VXLAN device
	}{
		{name: "vxlan ipv4", up: true,
			add:  []string{"link", "add", "vxa", "mtu", "1450", "type", "vxlan", "id", "42", "local", "10.77.0.1", "remote", "10.77.0.2", "dstport", "4789"},
			want: &fabric.Device{Name: "vxa", VNI: 42, Local: local.Addr(), Remote: remote, DstPort: 4789, MTU: 1450, Up: true}},
		{name: "vxlan ipv6, down, other port",
			add: []string{"link", "add", "vxb", "mtu", "1400", "type", "vxlan", "id", "16777215", "local", "fd00::1", "remote", "fd00::2", "dstport", "8472"},
			want: &fabric.Device{Name: "vxb", VNI: 16777215, Local: netip.MustParseAddr("fd00::1"), Remote: netip.MustParseAddr("fd00::2"),
				DstPort: 8472, MTU: 1400}},
		{name: "veth", up: true, add: []string{"link", "add", "vxc", "type", "veth", "peer", "name", "vxd"}},
	}
	for _, tt := range tests {
		if out, err := h.Exec(t.Context(), "ip", tt.add...); err != nil {
			t.Fatalf("%s: %v: %s", tt.name, err, out)
		}
		if tt.up {
			if out, err := h.Exec(t.Context(), "ip", "link", "set", tt.add[2], "up"); err != nil {
				t.Fatalf("%s: %v: %s", tt.name, err, out)
			}
		}
	}
	devs, all, err := listLinks(h.Netns)
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
		t.Errorf("links by name (-LinkList +listLinks):\n%s", diff)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.add[2]
			got, isDev := devs[name]
			if tt.want == nil {
				if isDev {
					t.Fatalf("%s read as a VXLAN device: %+v", name, got)
				}
				return
			}
			want := *tt.want
			want.Ifindex = wantAll[name]
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("device (-want +got):\n%s", diff)
			}
		})
	}
}
