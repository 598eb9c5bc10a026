package runtimetest

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
)

// Harness is what RunConformance needs of a runtime under test.
type Harness struct {
	Runtime runtime.Runtime
	// Lab names the nodes the suite makes; the harness removes them when
	// the test ends, whatever happens.
	Lab string
	// Image is what the suite's nodes run, for a runtime of images.
	Image string
	// Alive reports whether a process, by the PID a shell inside the node
	// printed for it, still runs.
	Alive func(node, pid string) bool
}

// RunConformance checks that a real runtime keeps the runtime.Runtime
// contract the agent relies on. newHarness returns a runtime on an empty
// host.
func RunConformance(t *testing.T, newHarness func(t *testing.T) Harness) {
	var image string // the harness's, set by each test
	spec := func(lab, node string, ifaces ...string) runtime.NodeSpec {
		s := runtime.NodeSpec{Lab: lab, Name: node, Image: image}
		for _, i := range ifaces {
			s.Interfaces = append(s.Interfaces, runtime.InterfaceSpec{Name: i, MTU: 1450})
		}
		return s
	}
	listed := func(t *testing.T, h Harness, node string) []string {
		t.Helper()
		nodes, err := h.Runtime.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Lab == h.Lab && n.Name == node {
				var out []string
				for _, p := range n.Ports {
					if p.HostPort != ident.HostPortName(h.Lab, node, p.Interface) {
						t.Errorf("%s:%s has host end %s, want %s", node, p.Interface, p.HostPort, ident.HostPortName(h.Lab, node, p.Interface))
					}
					out = append(out, p.Interface)
				}
				slices.Sort(out)
				return out
			}
		}
		return nil
	}
	exec := func(t *testing.T, h Harness, node, cmd string) string {
		t.Helper()
		out, err := Shell(t.Context(), h.Runtime, h.Lab, node, cmd)
		if err != nil {
			t.Fatalf("exec %q in %s: %v", cmd, node, err)
		}
		return strings.TrimSpace(out)
	}

	t.Run("make, make again, make match", func(t *testing.T) {
		h := newHarness(t)
		image = h.Image
		ctx := t.Context()
		n, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1", "eth2"))
		if err != nil {
			t.Fatal(err)
		}
		if !n.New || len(n.Ports) != 2 || n.ID == "" {
			t.Fatalf("made %+v, want a new node with 2 ports", n)
		}
		if got := listed(t, h, "r1"); !slices.Equal(got, []string{"eth1", "eth2"}) {
			t.Errorf("List shows %v, want eth1 and eth2", got)
		}
		mac := exec(t, h, "r1", "cat /sys/class/net/eth1/address")
		if mac != ident.NodeMAC(h.Lab, "r1", "eth1").String() {
			t.Errorf("eth1 has MAC %s, want %s", mac, ident.NodeMAC(h.Lab, "r1", "eth1"))
		}
		again, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1", "eth2"))
		if err != nil {
			t.Fatal(err)
		}
		if again.New {
			t.Error("the same spec again made a new node")
		}
		for i := range again.Ports {
			if again.Ports[i].Ifindex != n.Ports[i].Ifindex {
				t.Errorf("%s made again: ifindex %d → %d", again.Ports[i].Interface, n.Ports[i].Ifindex, again.Ports[i].Ifindex)
			}
		}
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1", "eth3")); err != nil {
			t.Fatal(err)
		}
		if got := listed(t, h, "r1"); !slices.Equal(got, []string{"eth1", "eth3"}) {
			t.Errorf("after eth2 left the spec and eth3 came: %v", got)
		}
		if _, err := Shell(ctx, h.Runtime, h.Lab, "r1", "ip link show eth2"); err == nil {
			t.Error("eth2 is still in the node")
		}
	})

	t.Run("exec streams and passes the exit code through", func(t *testing.T) {
		h := newHarness(t)
		image = h.Image
		ctx := t.Context()
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1")); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name                   string
			argv                   []string
			code                   int
			wantStdout, wantStderr string
		}{
			{"separate streams", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 3, "out\n", "err\n"},
			{"no shell between", []string{"echo", "$HOME", "a b"}, 0, "$HOME a b\n", ""},
			{"success", []string{"true"}, 0, "", ""},
		}
		for _, tt := range tests {
			var stdout, stderr strings.Builder
			code, err := h.Runtime.Exec(ctx, h.Lab, "r1", tt.argv, &stdout, &stderr)
			if err != nil || code != tt.code || stdout.String() != tt.wantStdout || stderr.String() != tt.wantStderr {
				t.Errorf("%s: exit %d, %v, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
					tt.name, code, err, stdout.String(), stderr.String(), tt.code, tt.wantStdout, tt.wantStderr)
			}
		}
		if _, err := h.Runtime.Exec(ctx, h.Lab, "nope", []string{"true"}, io.Discard, io.Discard); !errors.Is(err, runtime.ErrNoNode) {
			t.Errorf("exec in a missing node: %v, want ErrNoNode", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		h := newHarness(t)
		image = h.Image
		ctx := t.Context()
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1")); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r2", "eth1")); err != nil {
			t.Fatal(err)
		}
		if err := h.Runtime.DeleteNode(ctx, h.Lab, "r1"); err != nil {
			t.Fatal(err)
		}
		if got := listed(t, h, "r1"); got != nil {
			t.Errorf("a deleted node is listed with %v", got)
		}
		if got := listed(t, h, "r2"); !slices.Equal(got, []string{"eth1"}) {
			t.Errorf("the other node lost its interfaces: %v", got)
		}
		if err := h.Runtime.DeleteNode(ctx, h.Lab, "r1"); err != nil {
			t.Errorf("deleting a deleted node: %v", err)
		}
		if _, err := Shell(ctx, h.Runtime, h.Lab, "r1", "true"); err == nil {
			t.Error("exec in a deleted node succeeded")
		}
	})

	t.Run("processes end with their node", func(t *testing.T) {
		h := newHarness(t)
		image = h.Image
		ctx := t.Context()
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1")); err != nil {
			t.Fatal(err)
		}
		// A daemon as exec starts one: in the background, detached.
		stubborn := exec(t, h, "r1", "sh -c 'trap \"\" TERM; while :; do sleep 1; done' >/dev/null 2>&1 & echo $!")
		polite := exec(t, h, "r1", "sleep 300 >/dev/null 2>&1 & echo $!")
		if !h.Alive("r1", stubborn) || !h.Alive("r1", polite) {
			t.Fatalf("daemons %s and %s did not start", stubborn, polite)
		}
		if err := h.Runtime.DeleteNode(ctx, h.Lab, "r1"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for h.Alive("r1", stubborn) || h.Alive("r1", polite) {
			if time.Now().After(deadline) {
				t.Fatalf("processes outlived their node: %s alive %v, %s alive %v", stubborn, h.Alive("r1", stubborn), polite, h.Alive("r1", polite))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("made again, a node keeps its MAC addresses", func(t *testing.T) {
		h := newHarness(t)
		image = h.Image
		ctx := t.Context()
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1")); err != nil {
			t.Fatal(err)
		}
		before := exec(t, h, "r1", "cat /sys/class/net/eth1/address")
		if err := h.Runtime.DeleteNode(ctx, h.Lab, "r1"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Runtime.CreateNode(ctx, spec(h.Lab, "r1", "eth1")); err != nil {
			t.Fatal(err)
		}
		if after := exec(t, h, "r1", "cat /sys/class/net/eth1/address"); after != before {
			t.Errorf("MAC %s, then %s", before, after)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		h := newHarness(t)
		image = h.Image
		ctx := t.Context()
		for _, s := range []runtime.NodeSpec{
			spec(h.Lab, "r/1", "eth1"),
			spec(h.Lab, "r1", "eth1", "eth1"),
			spec(h.Lab, "r1", "lo"),
			spec(h.Lab, "r1", strings.Repeat("e", 16)),
		} {
			if _, err := h.Runtime.CreateNode(ctx, s); err == nil {
				t.Errorf("spec %+v accepted", s)
			}
		}
		if got := listed(t, h, "r1"); got != nil {
			t.Errorf("bad specs left %v", got)
		}
		if _, err := Shell(ctx, h.Runtime, h.Lab, "r1", "true"); err == nil {
			t.Error("bad specs left a node")
		}
	})
}
