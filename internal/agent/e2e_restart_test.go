package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// thousand returns 1000 tunnels of one lab with distinct VNIs and tags.
func thousand() []wire.DeclaredTunnel {
	ts := make([]wire.DeclaredTunnel, 1000)
	for i := range ts {
		ts[i] = tunnel("lab-big", i, 2050+i%1950)
		ts[i].VNI = 100000 + i // the formula's VNIs could collide among 1000 made-up links
	}
	return ts
}

// checkExactly asserts that the host holds exactly the tunnels: every port
// with its tag, every device, and nothing else of netloom's.
func (a *agentHost) checkExactly(t *testing.T, ts []wire.DeclaredTunnel) {
	t.Helper()
	tags, labs := a.bridgePorts(t)
	devs := a.vxlanDevices(t)
	owned := 0
	for _, lab := range labs {
		if lab != "" {
			owned++
		}
	}
	if owned != len(ts) || len(devs) != len(ts) {
		t.Errorf("host holds %d owned ports and %d devices, want %d of each", owned, len(devs), len(ts))
	}
	bad := 0
	for _, tn := range ts {
		d, ok := devs[tn.PortName]
		if tags[tn.PortName] != tn.ExpectedVLAN || !ok || d.vni != tn.VNI {
			if bad++; bad <= 3 {
				t.Errorf("tunnel %s: tag %d device %+v, want tag %d vni %d", tn.PortName, tags[tn.PortName], d, tn.ExpectedVLAN, tn.VNI)
			}
		}
	}
}

// TestAgentCrashAndRestart kills the agent with SIGKILL in the middle of a
// 1000-tunnel declaration and restarts it with no controller reachable: it
// must converge from its cache, with no leftover and no duplicate. A second
// restart, of an agent holding 1000 converged tunnels, must change no
// device's ifindex and delete nothing.
func TestAgentCrashAndRestart(t *testing.T) {
	a := newAgentHost(t)
	ts := thousand()

	// A first, small declaration, so the crash interrupts a change rather
	// than a first start.
	if code, resp := a.declare(t, wire.DeclareStateRequest{Tunnels: ts[:10], Generation: gen(1)}); code != 200 || len(resp.Results) != 10 {
		t.Fatalf("first declaration: %d %+v", code, resp)
	}
	done := make(chan int, 1)
	go func() {
		code, _ := a.declare(t, wire.DeclareStateRequest{Tunnels: ts, Generation: gen(2)})
		done <- code
	}()
	// Kill while the kernel devices are being made: some exist, the OVSDB
	// transaction has not run.
	a.waitFor(t, "the declaration to start making devices", func() bool { return len(a.vxlanDevices(t)) > 100 })
	if err := a.proc.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code == 200 {
		t.Fatal("the declaration finished before the kill; the test proves nothing")
	}
	partial := len(a.vxlanDevices(t))
	tags, _ := a.bridgePorts(t)
	t.Logf("killed mid-declaration with %d devices and %d ports made", partial, len(tags))

	start := time.Now()
	a.start(t) // the controller is unreachable
	t.Logf("restarted and converged from the cache in %v", time.Since(start))
	a.checkExactly(t, ts)
	var st wire.OverlayStatus
	if code := a.call(t, "GET", "/overlay/status", token, nil, &st); code != 200 || len(st.LinkTunnels) != 1000 || st.Generation != 2 {
		t.Errorf("status %d: %d tunnels, generation %d; want 1000 and 2", code, len(st.LinkTunnels), st.Generation)
	}

	t.Run("restart keeps every device", func(t *testing.T) {
		before := a.vxlanDevices(t)
		cfg := a.nextCfg(t)
		if err := a.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		a.start(t)
		t.Logf("restart with 1000 converged tunnels: ready in %v", time.Since(start))
		after := a.vxlanDevices(t)
		changed := 0
		for name, d := range before {
			if after[name] != d {
				changed++
			}
		}
		if changed != 0 || len(after) != len(before) {
			t.Errorf("%d of %d devices changed or went missing (%d after)", changed, len(before), len(after))
		}
		if got := a.nextCfg(t); got != cfg {
			t.Errorf("the restart wrote to OVSDB: next_cfg %d → %d", cfg, got)
		}
		a.checkExactly(t, ts)
	})

	t.Run("a corrupt cache is ignored", func(t *testing.T) {
		if err := a.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.host.Exec(t.Context(), "sh", "-c", fmt.Sprintf("echo '{\"tunnels\": [' > %s/agent/declared_overlay_state.json", a.host.Dir)); err != nil {
			t.Fatal(err)
		}
		a.start(t)
		// Nothing is removed on restore: the bridge keeps what it had.
		a.checkExactly(t, ts)
	})
}
