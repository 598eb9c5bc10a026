package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

func TestPeersOf(t *testing.T) {
	t.Parallel()
	tun := func(port, remote string, mtu int) wire.DeclaredTunnel {
		return wire.DeclaredTunnel{PortName: port, LabID: "lab", VNI: 5000, LocalIP: "10.77.0.1", RemoteIP: remote, MTU: mtu}
	}
	tests := []struct {
		name    string
		tunnels []wire.DeclaredTunnel
		want    string
	}{
		{"none", nil, ""},
		{"default MTU", []wire.DeclaredTunnel{tun("vxlan-1", "10.77.0.2", 0)}, "10.77.0.2/1450"},
		{"largest MTU per peer, sorted by address", []wire.DeclaredTunnel{
			tun("vxlan-1", "10.77.0.10", 1400), tun("vxlan-2", "10.77.0.2", 9000), tun("vxlan-3", "10.77.0.2", 0), tun("vxlan-4", "10.77.0.10", 1300),
		}, "10.77.0.2/9000 10.77.0.10/1400"},
		{"placeholders and bad addresses lead nowhere", []wire.DeclaredTunnel{
			{PortName: "vxlan-1", RemoteIP: "10.77.0.2", LocalIP: "10.77.0.1", VNI: 5000, Placeholder: true},
			tun("vxlan-2", "", 1500), tun("vxlan-3", "hostB", 1500), tun("vxlan-4", "fd00::2", 1500),
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range peersOf(stateOf(nil, tt.tunnels).tunnels, 1450) {
				got = append(got, fmt.Sprintf("%s/%d", p.IP, p.LinkMTU))
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("peers %q, want %q", s, tt.want)
			}
		})
	}
}

// TestUnderlayReportWakes: only a change of a status or a number, or of
// the underlay MTU, asks for a heartbeat at once; a new check time alone
// does not.
func TestUnderlayReportWakes(t *testing.T) {
	t.Parallel()
	ok := wire.UnderlayCheck{PeerIP: "10.77.0.2", Status: wire.UnderlayOK, NeedMTU: 1500, CheckedAt: time.Unix(1, 0)}
	later := ok
	later.CheckedAt = time.Unix(2, 0)
	short := wire.UnderlayCheck{PeerIP: "10.77.0.2", Status: wire.UnderlayMTUTooSmall, NeedMTU: 1500, PathMTU: 1400, Reason: "…"}
	shorter := short
	shorter.PathMTU = 1300
	r := newUnderlayReport()
	woke := func() bool {
		select {
		case <-r.changed:
			return true
		default:
			return false
		}
	}
	steps := []struct {
		name string
		do   func()
		want bool
	}{
		{"first results", func() { r.setChecks([]wire.UnderlayCheck{ok}) }, true},
		{"the same, later", func() { r.setChecks([]wire.UnderlayCheck{later}) }, false},
		{"a status changes", func() { r.setChecks([]wire.UnderlayCheck{short}) }, true},
		{"a number changes", func() { r.setChecks([]wire.UnderlayCheck{shorter}) }, true},
		{"a peer goes", func() { r.setChecks(nil) }, true},
		{"the MTU is first read", func() { r.setMTU(1500) }, true},
		{"the MTU again", func() { r.setMTU(1500) }, false},
		{"the MTU changes", func() { r.setMTU(1400) }, true},
		{"the MTU cannot be read", func() { r.setMTUErr(errors.New("no interface holds 10.77.0.1")) }, true},
		{"nor again", func() { r.setMTUErr(errors.New("no interface holds 10.77.0.1")) }, false},
		{"the MTU is back", func() { r.setMTU(1400) }, true},
	}
	for _, s := range steps {
		s.do()
		if got := woke(); got != s.want {
			t.Errorf("%s: woke %v, want %v", s.name, got, s.want)
		}
	}
	if mtu, checks := r.get(); mtu != 1400 || len(checks) != 0 {
		t.Errorf("report holds %d, %v", mtu, checks)
	}
}
