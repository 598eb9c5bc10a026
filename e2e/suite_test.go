package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestFaults runs every fault of issue #8 in turn on one world, and checks
// after each that traffic, database and bridges are right and that nothing
// extra remains.
func TestFaults(t *testing.T) {
	w := newWorld(t)
	lab := w.mainLab()
	if err := w.check(t.Context(), t, nil, true); err != nil {
		t.Fatalf("after the first deploy: %v", err)
	}
	var results []result
	// run measures one scenario: fault breaks, heal repairs (nil: the system
	// heals itself), and the world must recover.
	run := func(name string, fault, heal func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			p := startProber(t.Context(), lab, "a2", "10.0.2.2") // across hostA-hostB
			fault(t)
			if heal != nil {
				heal(t)
			}
			took := w.recover(t, nil)
			time.Sleep(300 * time.Millisecond) // let the prober see the recovered link
			sent, lost := p.finish()
			results = append(results, result{scenario: name, recovery: took, sent: sent, lost: lost, leftovers: "none"})
			t.Logf("%s: recovered in %v, %d of %d probes lost", name, took, lost, sent)
		})
	}
	hostA, hostB, hostC := w.Hosts["hostA"], w.Hosts["hostB"], w.Hosts["hostC"]
	v := w.labView(t, lab)
	tunnelAB := tunnelOf(v, "a2:eth2-b1:eth1")

	run("agent killed and restarted while the controller is down", func(t *testing.T) {
		views := map[string]store.LabView{lab: w.labView(t, lab)}
		if err := w.Controller.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := w.Agents["hostB"].Kill(); err != nil {
			t.Fatal(err)
		}
		w.StartAgent(t, "hostB")
		w.WaitAgent(t, "hostB")
		took := w.recover(t, views)
		t.Logf("converged from its cache with no controller in %v", took)
	}, func(t *testing.T) { w.StartController(t) })

	run("controller killed in the middle of a deploy, then restarted", func(t *testing.T) {
		second := "x" + w.Bed.ID()
		file := fmt.Sprintf(labFile, second)
		path := w.Ctl.Dir + "/" + second + ".yaml"
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := w.CLI(t, "lab", "apply", "-f", path); done <- err }()
		// Kill once the deploy is on the hosts: its nodes have appeared.
		deadline := time.Now().Add(30 * time.Second)
		for !exists("/run/netns/" + ident.NamespaceName(second, "a1")) {
			if time.Now().After(deadline) {
				t.Fatal("the deploy never reached the hosts")
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := w.Controller.Kill(); err != nil {
			t.Fatal(err)
		}
		<-done
		w.labs = append(w.labs, second)
		w.StartController(t)
	}, nil)
	w.destroy(t, "x"+w.Bed.ID())

	run("agent cut off (underlay down), then healed", func(t *testing.T) {
		if _, err := hostC.Exec(t.Context(), "ip", "link", "set", testbed.UnderlayIface, "down"); err != nil {
			t.Fatal(err)
		}
		// A convergence cycle runs without hostC and says so; the links
		// through hostC are not torn down.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var conv wire.ConvergeResponse
			w.Call(t, "GET", "/api/v1/converge", "", nil, &conv)
			reported := false
			for _, a := range conv.Agents {
				reported = reported || a.Host == "hostC" && a.Error != ""
			}
			if reported {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("hostC cut off, but no convergence reports it: %+v", conv.Agents)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}, func(t *testing.T) {
		if _, err := hostC.Exec(t.Context(), "ip", "link", "set", testbed.UnderlayIface, "up"); err != nil {
			t.Fatal(err)
		}
	})

	run("OVS daemons restarted", func(t *testing.T) {
		if err := hostB.RestartOVS(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}, nil)

	run("OVS database wiped", func(t *testing.T) {
		if err := hostC.RestartOVS(t.Context(), true); err != nil {
			t.Fatal(err)
		}
	}, nil)

	port := tunnelAB.PortName
	// recreate replaces the host's device of the tunnel, as an engineer would
	// with two commands. The host's agent is paused meanwhile: it would
	// otherwise repair the deletion before the add ("File exists"). It sees
	// the replaced device as one change, and repairs that.
	recreate := func(t *testing.T, host string, vni int, local, remote string) {
		h, agent := w.Hosts[host], w.Agents[host]
		if err := agent.Pause(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := agent.Resume(); err != nil {
				t.Error(err)
			}
		}()
		if _, err := h.Exec(t.Context(), "ip", "link", "del", port); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Exec(t.Context(), "ip", "link", "add", port, "type", "vxlan", "id", fmt.Sprint(vni), "local", local, "remote", remote, "dstport", "4789"); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		name string
		do   func(t *testing.T)
	}{
		{"drift: tag changed by hand", func(t *testing.T) { mustVSCtl(t, hostA, "set", "port", port, "tag=7") }},
		{"drift: VNI changed by hand", func(t *testing.T) { recreate(t, "hostA", 999, "10.77.0.1", "10.77.0.2") }},
		{"drift: remote changed by hand", func(t *testing.T) { recreate(t, "hostA", tunnelAB.VNI, "10.77.0.1", "10.77.0.99") }},
		{"drift: device deleted by hand", func(t *testing.T) {
			if _, err := hostB.Exec(t.Context(), "ip", "link", "del", port); err != nil {
				t.Fatal(err)
			}
		}},
		{"drift: port deleted by hand", func(t *testing.T) { mustVSCtl(t, hostB, "del-port", port) }},
	} {
		run(d.name, d.do, nil)
	}

	t.Run("stale generation", func(t *testing.T) {
		before, err := readBridge(t.Context(), hostA)
		if err != nil {
			t.Fatal(err)
		}
		old := int64(1)
		body, _ := json.Marshal(wire.DeclareStateRequest{DeclaredLabs: []string{lab}, Generation: &old})
		req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://10.77.0.1:7401/overlay/declare-state", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+w.AgentToken)
		req.Header.Set(wire.CredentialHeader, w.Credential(t, "hostA"))
		resp, err := w.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("a declaration of generation 1 that would remove the lab: %d, want 409", resp.StatusCode)
		}
		after, _ := readBridge(t.Context(), hostA)
		if len(after) != len(before) {
			t.Errorf("the stale declaration changed the bridge: %d ports → %d", len(before), len(after))
		}
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatal(err)
		}
		results = append(results, result{scenario: "stale generation", leftovers: "none (409, nothing changed)"})
	})

	t.Run("two labs with the same link names on the same hosts (W-1)", func(t *testing.T) {
		twin := "y" + w.Bed.ID()
		w.apply(t, twin, strings.Replace(fmt.Sprintf(labFile, twin), `"ip addr add 10.0.2.2/24 dev eth1"`, `"ip addr add 10.0.2.77/24 dev eth1"`, 1))
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatal(err)
		}
		if ping(t.Context(), lab, "a2", "10.0.2.77") {
			t.Error("a node of one lab reaches the other lab's twin link")
		}
		if !ping(t.Context(), twin, "a2", "10.0.2.77") {
			t.Error("the twin lab's own link does not pass traffic")
		}
		w.destroy(t, twin)
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatalf("after destroying the twin: %v", err)
		}
		results = append(results, result{scenario: "two labs with the same link names on the same hosts (W-1)", leftovers: "none"})
	})

	t.Run("forced VNI hash collision (W-26)", func(t *testing.T) {
		coll := "z" + w.Bed.ID()
		l1, l2 := collidingLinks(coll)
		n := strings.NewReplacer(":eth1", "", "-", " ").Replace
		p1, p2 := strings.Fields(n(l1)), strings.Fields(n(l2))
		file := fmt.Sprintf(`name: %s
topology:
  nodes:
    %s: {host: hostA, exec: ["ip addr add 10.9.1.1/24 dev eth1"]}
    %s: {host: hostB, exec: ["ip addr add 10.9.1.2/24 dev eth1"]}
    %s: {host: hostA, exec: ["ip addr add 10.9.2.1/24 dev eth1"]}
    %s: {host: hostC, exec: ["ip addr add 10.9.2.2/24 dev eth1"]}
  links:
    - endpoints: ["%s:eth1", "%s:eth1"]
    - endpoints: ["%s:eth1", "%s:eth1"]
`, coll, p1[0], p1[1], p2[0], p2[1], p1[0], p1[1], p2[0], p2[1])
		w.apply(t, coll, file)
		cv := w.labView(t, coll)
		if *cv.Links[0].VNI == *cv.Links[1].VNI {
			t.Fatalf("two links share VNI %d", *cv.Links[0].VNI)
		}
		if !ping(t.Context(), coll, p1[0], "10.9.1.2") || !ping(t.Context(), coll, p2[0], "10.9.2.2") {
			t.Error("a link with a colliding first-choice VNI passes no traffic")
		}
		t.Logf("first choice %d for both; stored %d and %d", ident.VNI(coll, l1), *cv.Links[0].VNI, *cv.Links[1].VNI)
		w.destroy(t, coll)
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatal(err)
		}
		results = append(results, result{scenario: "forced VNI hash collision (W-26)", leftovers: fmt.Sprintf("none; VNIs %d and %d", *cv.Links[0].VNI, *cv.Links[1].VNI)})
	})

	report(t, results)
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func mustVSCtl(t *testing.T, h *testbed.Host, args ...string) {
	t.Helper()
	if _, err := h.VSCtl(t.Context(), args...); err != nil {
		t.Fatal(err)
	}
}

func (w *world) labView(t *testing.T, lab string) store.LabView {
	t.Helper()
	var v store.LabView
	if code := w.Call(t, "GET", "/api/v1/labs/"+lab, "", nil, &v); code != 200 {
		t.Fatalf("lab %s: %d", lab, code)
	}
	return v
}

func tunnelOf(v store.LabView, link string) *store.Tunnel {
	for _, ls := range v.Links {
		if ls.Name == link {
			return ls.Tunnel
		}
	}
	return nil
}

// collidingLinks finds two cross-host link names of lab whose first-choice
// VNIs are equal, by the birthday bound within a few thousand names.
func collidingLinks(lab string) (string, string) {
	seen := map[uint32]string{}
	for i := 0; ; i++ {
		link := ident.LinkName(fmt.Sprintf("p%d:eth1", i), fmt.Sprintf("q%d:eth1", i))
		v := ident.VNI(lab, link)
		if prev, ok := seen[v]; ok {
			return prev, link
		}
		seen[v] = link
	}
}

// report logs the table and writes it where NETLOOM_RELIABILITY_REPORT says.
func report(t *testing.T, results []result) {
	var b strings.Builder
	b.WriteString("| scenario | time to recover | probes lost / sent (a2→b1, every 100 ms) | left over |\n|---|---|---|---|\n")
	for _, r := range results {
		rec, probes := "-", "-"
		if r.recovery > 0 {
			rec = r.recovery.Round(time.Millisecond).String()
		}
		if r.sent > 0 {
			probes = fmt.Sprintf("%d / %d", r.lost, r.sent)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.scenario, rec, probes, r.leftovers)
	}
	t.Logf("reliability:\n%s", b.String())
	if path := os.Getenv("NETLOOM_RELIABILITY_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}
