package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestHostDeclarations runs what the host declaration (issue #12) must
// survive on one world, each step checked by traffic, by the database
// agreeing with the bridges and kernels, and by nothing extra left: a host
// rebooted with the controller up and with it down, a host wiped, a node
// deleted by hand, a link side that fails, sticky placement and a pinned
// move, a deploy whose client went away, and a controller on a restored
// database.
func TestHostDeclarations(t *testing.T) {
	w := newWorld(t)
	lab := w.mainLab()
	if err := w.check(t.Context(), t, nil, true); err != nil {
		t.Fatalf("after the first deploy: %v", err)
	}
	var results []result
	hostB, hostC := w.Hosts["hostB"], w.Hosts["hostC"]

	// reboot takes from a host what a reboot does: the agent, its node
	// namespaces with their veths, its VXLAN devices; the OVS database and
	// the agent's state directory stay. OVS comes back at once.
	reboot := func(t *testing.T, host string, v store.LabView) {
		if err := w.Agents[host].Kill(); err != nil {
			t.Fatal(err)
		}
		for _, n := range v.Nodes {
			if n.PlacedOn == host {
				if err := netns.Delete(ident.NamespaceName(lab, n.Name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		devs, err := readDevices(t.Context(), w.Hosts[host])
		if err != nil {
			t.Fatal(err)
		}
		for name := range devs {
			if _, err := w.Hosts[host].Exec(t.Context(), "ip", "link", "del", name); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Hosts[host].RestartOVS(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	measure := func(name string, views map[string]store.LabView) {
		took := w.recover(t, views)
		results = append(results, result{scenario: name, recovery: took, leftovers: "none"})
		t.Logf("%s: traffic and state back %v after the agent started", name, took)
	}

	t.Run("host rebooted, controller up", func(t *testing.T) {
		reboot(t, "hostB", w.labView(t, lab))
		w.StartAgent(t, "hostB")
		measure("host rebooted (nodes, veths, VXLAN devices gone), controller up", nil)
	})

	t.Run("host rebooted, controller down", func(t *testing.T) {
		views := map[string]store.LabView{lab: w.labView(t, lab)}
		if err := w.Controller.Kill(); err != nil {
			t.Fatal(err)
		}
		defer w.StartController(t)
		reboot(t, "hostC", views[lab])
		w.StartAgent(t, "hostC")
		measure("host rebooted, controller down: from the agent's cache alone", views)
	})

	t.Run("host wiped: OVS database and agent state gone, nodes still there", func(t *testing.T) {
		if err := w.Agents["hostB"].Kill(); err != nil {
			t.Fatal(err)
		}
		if err := hostB.RestartOVS(t.Context(), true); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(hostB.Dir, "agent")); err != nil {
			t.Fatal(err)
		}
		// Its credential went with its state: the operator lets the
		// reinstalled agent take the name again.
		if out, err := w.CLI(t, "host", "unbind", "hostB"); err != nil {
			t.Fatalf("host unbind: %v\n%s", err, out)
		}
		w.StartAgent(t, "hostB")
		measure("host wiped (OVS database and agent state), rebuilt by the controller at registration", nil)
	})

	t.Run("node deleted by hand, controller down", func(t *testing.T) {
		views := map[string]store.LabView{lab: w.labView(t, lab)}
		if err := w.Controller.Kill(); err != nil {
			t.Fatal(err)
		}
		defer w.StartController(t)
		if err := netns.Delete(ident.NamespaceName(lab, "c1")); err != nil {
			t.Fatal(err)
		}
		measure("node deleted by hand (ip netns del), no controller", views)
	})

	t.Run("a side that fails is an error with the agent's reason, never up", func(t *testing.T) {
		side := "s" + w.Bed.ID()
		port := ident.HostPortName(side, "s2", "eth1")
		// Something not netloom's holds the port name on hostC's bridge.
		mustVSCtl(t, hostC, "add-port", "netloom0", port)
		file := fmt.Sprintf(`name: %s
topology:
  nodes:
    s1: {host: hostB, exec: ["ip addr add 10.8.1.1/24 dev eth1"]}
    s2: {host: hostC, exec: ["ip addr add 10.8.1.2/24 dev eth1"]}
  links:
    - endpoints: ["s1:eth1", "s2:eth1"]
`, side)
		path := filepath.Join(w.Ctl.Dir, side+".yaml")
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := w.CLI(t, "lab", "apply", "-f", path)
		w.labs = append(w.labs, side)
		if err == nil {
			t.Fatalf("apply over a foreign port succeeded:\n%s", out)
		}
		ls := w.labView(t, side).Links[0]
		if ls.ActualState == "up" || !strings.Contains(ls.Error, "hostC") || !strings.Contains(ls.Error, "not netloom's") {
			t.Fatalf("link %s: %s %q, want error naming hostC and the agent's reason", ls.Name, ls.ActualState, ls.Error)
		}
		out, _ = w.CLI(t, "link", "ls", side)
		if !strings.Contains(out, "not netloom's") {
			t.Errorf("link ls does not say why:\n%s", out)
		}
		t.Logf("link state: %s: %s", ls.ActualState, ls.Error)
		mustVSCtl(t, hostC, "del-port", port)
		if code := w.Call(t, "POST", "/api/v1/converge", "", nil, nil); code != 200 {
			t.Fatalf("converge: %d", code)
		}
		if !ping(t.Context(), side, "s1", "10.8.1.2") {
			t.Error("no traffic once the foreign port went")
		}
		w.destroy(t, side)
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("placement is sticky; a pinned move leaves nothing behind", func(t *testing.T) {
		mv := "m" + w.Bed.ID()
		file := `name: %s
topology:
  nodes:
    m1: {exec: ["ip addr add 10.7.1.1/24 dev eth1"]}
    m2: {%sexec: ["ip addr add 10.7.1.2/24 dev eth1"]}
    m3: {}
  links:
    - endpoints: ["m1:eth1", "m2:eth1"]
    - endpoints: ["m2:eth2", "m3:eth1"]
`
		w.apply(t, mv, fmt.Sprintf(file, mv, ""))
		placed := func() map[string]string {
			out := map[string]string{}
			for _, n := range w.labView(t, mv).Nodes {
				out[n.Name] = n.PlacedOn
			}
			return out
		}
		first := placed()
		// Apply again, retry the deploy, and let the repair loop run: no
		// node moves.
		w.apply(t, mv, fmt.Sprintf(file, mv, ""))
		if code := w.Call(t, "POST", "/api/v1/labs/"+mv+"/deploy", "", nil, nil); code != 200 {
			t.Fatalf("deploy again: %d", code)
		}
		time.Sleep(3 * time.Second) // a reconcile cycle (2 s here)
		if now := placed(); fmt.Sprint(now) != fmt.Sprint(first) {
			t.Fatalf("placements moved: %v → %v", first, now)
		}
		to := "hostA"
		if first["m2"] == to {
			to = "hostB"
		}
		out, err := w.CLI(t, "lab", "apply", "-f", writeLab(t, w, mv, fmt.Sprintf(file, mv, "host: "+to+", ")), "--plan")
		if err != nil || !strings.Contains(out, first["m2"]+" → "+to) {
			t.Fatalf("plan of the move: %v\n%s", err, out)
		}
		w.apply(t, mv, fmt.Sprintf(file, mv, "host: "+to+", "))
		if now := placed(); now["m2"] != to || now["m1"] != first["m1"] || now["m3"] != first["m3"] {
			t.Fatalf("after the pinned move: %v", now)
		}
		if !ping(t.Context(), mv, "m1", "10.7.1.2") {
			t.Error("m1 does not reach m2 on its new host")
		}
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatalf("after the move: %v", err)
		}
		w.destroy(t, mv)
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatalf("after destroy: %v", err)
		}
	})

	t.Run("a deploy outlives its client", func(t *testing.T) {
		gone := "g" + w.Bed.ID()
		path := writeLab(t, w, gone, fmt.Sprintf(labFile, gone))
		cli := exec.CommandContext(t.Context(), "ip", "netns", "exec", w.Ctl.Netns, netloomBin, "lab", "apply", "-f", path,
			"--controller", testbed.ControllerURL, "--token-file", filepath.Join(w.Ctl.Dir, "api-token"))
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		// The client goes as soon as the lab exists: a Ctrl-C.
		deadline := time.Now().Add(30 * time.Second)
		for w.Call(t, "GET", "/api/v1/labs/"+gone, "", nil, nil) != 200 {
			if time.Now().After(deadline) {
				t.Fatal("the lab never appeared")
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = cli.Process.Kill()
		_ = cli.Wait()
		w.labs = append(w.labs, gone)
		deadline = time.Now().Add(60 * time.Second)
		for w.labView(t, gone).State != store.LabRunning {
			if time.Now().After(deadline) {
				v := w.labView(t, gone)
				t.Fatalf("lab %s %q after its client went", v.State, v.StateError)
			}
			time.Sleep(50 * time.Millisecond)
		}
		w.destroy(t, gone)
	})

	t.Run("controller on a restored database", func(t *testing.T) {
		db := filepath.Join(w.Ctl.Dir, "db")
		if err := w.Controller.Kill(); err != nil {
			t.Fatal(err)
		}
		backup := t.TempDir()
		copyDir(t, db, backup)
		w.StartController(t)
		// Declarations go on after the backup: the agents' generations move
		// past the one the backup holds.
		var before wire.ConvergeResponse
		for range 3 {
			w.Call(t, "POST", "/api/v1/converge", "", nil, &before)
		}
		if err := w.Controller.Kill(); err != nil {
			t.Fatal(err)
		}
		copyDir(t, backup, db)
		w.StartController(t)
		start := time.Now()
		deadline := start.Add(60 * time.Second)
		for {
			var conv wire.ConvergeResponse
			code := w.Call(t, "POST", "/api/v1/converge", "", nil, &conv)
			refused := false
			for _, a := range conv.Agents {
				refused = refused || a.Error != ""
			}
			if code == 200 && !refused && conv.Generation > before.Generation {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the restored controller's declarations are still refused: %d %+v", code, conv)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("restored database: converging again after %v", time.Since(start))
		if err := w.check(t.Context(), t, nil, true); err != nil {
			t.Fatal(err)
		}
	})

	report(t, results)
}

func writeLab(t *testing.T, w *world, lab, file string) string {
	t.Helper()
	path := filepath.Join(w.Ctl.Dir, lab+".yaml")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyDir replaces dst's files by src's (a database and its WAL files).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	entries, err = os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
