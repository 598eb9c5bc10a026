package underlay_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/underlay"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// side is one simulated host with its prober.
type side struct {
	host   *testbed.Host
	prober *underlay.Prober
	peer   underlay.Peer
}

func newSide(t *testing.T, bed *testbed.Bed, name, ip string) *side {
	t.Helper()
	h, err := bed.AddMachine(t.Context(), name, netip.MustParsePrefix(ip+"/24"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := underlay.New(underlay.Config{DataIP: netip.MustParseAddr(ip), Port: 4789, HostNetns: h.Netns,
		ProbeNetns: ident.UnderlayNamespaceName(h.Netns, name), Timeout: 500 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &side{host: h, prober: p, peer: underlay.Peer{IP: netip.MustParseAddr(ip), LinkMTU: 1450}}
}

// check runs one check and renders it as "status need path", one per peer.
func (s *side) check(t *testing.T, peers ...underlay.Peer) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	got, err := s.prober.Check(t.Context(), peers)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range got {
		if c.CheckedAt.IsZero() {
			t.Errorf("%s: no check time", c.PeerIP)
		}
		out = append(out, fmt.Sprintf("%s %s %d %d", c.PeerIP, c.Status, c.NeedMTU, c.PathMTU))
		if c.Status != wire.UnderlayOK {
			t.Logf("%s → %s: %s", s.host.Name, c.PeerIP, c.Reason)
		}
	}
	return strings.Join(out, ", "), took
}

// TestProber checks two simulated hosts against each other through every
// cause a check tells apart, and times one check of one peer each time.
func TestProber(t *testing.T) {
	bed := testbed.Start(t)
	a := newSide(t, bed, "hostA", "10.77.0.1")
	b := newSide(t, bed, "hostB", "10.77.0.2")
	both := func(t *testing.T, wantAB, wantBA string) {
		t.Helper()
		gotBA, tookBA := b.check(t, a.peer)
		gotAB, tookAB := a.check(t, b.peer)
		if gotAB != wantAB {
			t.Errorf("hostA → hostB: %s, want %s", gotAB, wantAB)
		}
		if gotBA != wantBA {
			t.Errorf("hostB → hostA: %s, want %s", gotBA, wantBA)
		}
		t.Logf("one peer checked in %v (hostA), %v (hostB)", tookAB.Round(time.Millisecond), tookBA.Round(time.Millisecond))
	}
	ul := func(t *testing.T, h *testbed.Host, args ...string) {
		t.Helper()
		if out, err := h.Exec(t.Context(), args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}

	t.Run("ok", func(t *testing.T) {
		// Each answers only once its probe namespace holds the other.
		b.check(t, a.peer)
		a.check(t, b.peer)
		both(t, "10.77.0.2 ok 1500 0", "10.77.0.1 ok 1500 0")
	})
	t.Run("underlay MTU", func(t *testing.T) {
		for _, s := range []*side{a, b} {
			if mtu, err := s.prober.UnderlayMTU(); err != nil || mtu != 1500 {
				t.Errorf("%s: underlay mtu %d, %v; want 1500", s.host.Name, mtu, err)
			}
		}
	})
	t.Run("short path both ways", func(t *testing.T) {
		ul(t, b.host, "ip", "link", "set", testbed.UnderlayIface, "mtu", "1400")
		if mtu, err := b.prober.UnderlayMTU(); err != nil || mtu != 1400 {
			t.Errorf("hostB: underlay mtu %d, %v; want 1400", mtu, err)
		}
		both(t, "10.77.0.2 mtu 1500 1400", "10.77.0.1 mtu 1500 1400")
		ul(t, b.host, "ip", "link", "set", testbed.UnderlayIface, "mtu", "1500")
		both(t, "10.77.0.2 ok 1500 0", "10.77.0.1 ok 1500 0")
	})
	t.Run("VXLAN port blocked", func(t *testing.T) {
		rule := []string{"INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"}
		ul(t, b.host, append([]string{"iptables", "-A"}, rule...)...)
		t.Cleanup(func() { _, _ = b.host.Exec(t.Context(), "iptables", append([]string{"-D"}, rule...)...) })
		// hostB's outgoing probes pass; hostA's answers to them do not.
		both(t, "10.77.0.2 port_blocked 1500 0", "10.77.0.1 port_blocked 1500 0")
		ul(t, b.host, append([]string{"iptables", "-D"}, rule...)...)
		both(t, "10.77.0.2 ok 1500 0", "10.77.0.1 ok 1500 0")
	})
	t.Run("unreachable", func(t *testing.T) {
		got, took := a.check(t, b.peer, underlay.Peer{IP: netip.MustParseAddr("10.77.0.9"), LinkMTU: 9000})
		if want := "10.77.0.2 ok 1500 0, 10.77.0.9 unreachable 9050 0"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		t.Logf("two peers, one unreachable, checked in %v", took.Round(time.Millisecond))
	})
	t.Run("a former peer is forgotten", func(t *testing.T) {
		if got, _ := a.check(t); got != "" {
			t.Errorf("no peers: %q", got)
		}
		if got, _ := b.check(t, a.peer); got != "10.77.0.1 port_blocked 1500 0" {
			t.Errorf("hostB → hostA after hostA dropped it: %s, want port_blocked", got)
		}
	})
}
