package docker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/docker"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestConformance runs the runtime seam's contract against Docker: one bed
// with one host and a private daemon holding the BusyBox image; each case
// makes its nodes in a lab of its own.
func TestConformance(t *testing.T) {
	bed := testbed.Start(t)
	ctx := t.Context()
	h, err := bed.AddHost(ctx, "hostA", netip.MustParsePrefix("10.77.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := bed.StartDocker(ctx, "hostA")
	if err != nil {
		t.Fatal(err)
	}
	if err := dk.LoadImages(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	rt, err := docker.New(ctx, docker.Config{Socket: dk.Socket, HostNetns: h.Netns}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	runtimetest.RunConformance(t, func(t *testing.T) runtimetest.Harness {
		lab := fmt.Sprintf("%s%d", bed.ID(), n.Add(1))
		return runtimetest.Harness{Runtime: rt, Lab: lab, Image: "netloom/busybox:latest",
			Alive: func(node, pid string) bool {
				// A PID inside the container's own PID namespace: ask there.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				out, err := runtimetest.Shell(ctx, rt, lab, node, "kill -0 "+pid+" && echo alive")
				return err == nil && strings.Contains(out, "alive")
			}}
	})
	t.Run("settings", func(t *testing.T) { testSettings(t, rt, h, bed.ID()+"set") })
	t.Run("a container without the node's labels", func(t *testing.T) { testUnlabeled(t, rt, dk, bed.ID()+"sq") })
}

// testUnlabeled puts a container without netloom's labels at a node's
// name: it is not adopted, listed, exec'd into or deleted, and the errors
// name it.
func testUnlabeled(t *testing.T, rt *docker.Runtime, dk *testbed.Docker, lab string) {
	ctx := t.Context()
	cname := ident.NamespaceName(lab, "squat")
	if out, err := dk.CLI(ctx, "create", "--name", cname, "--network", "none", "netloom/busybox:latest", "sleep", "600"); err != nil {
		t.Fatalf("docker create: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = dk.CLI(context.Background(), "rm", "-f", cname) })
	if _, err := rt.CreateNode(ctx, runtime.NodeSpec{Lab: lab, Name: "squat", Image: "netloom/busybox:latest"}); err == nil || !strings.Contains(err.Error(), cname) {
		t.Errorf("CreateNode over %s: %v, want an error naming it", cname, err)
	}
	if err := rt.DeleteNode(ctx, lab, "squat"); err == nil || !strings.Contains(err.Error(), cname) {
		t.Errorf("DeleteNode of %s: %v, want an error naming it", cname, err)
	}
	if _, err := runtimetest.Shell(ctx, rt, lab, "squat", "true"); !errors.Is(err, runtime.ErrNoNode) {
		t.Errorf("exec in %s: %v, want ErrNoNode", cname, err)
	}
	nodes, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == cname {
			t.Errorf("List reports %+v", n)
		}
	}
	if out, err := dk.CLI(ctx, "inspect", "--format", "{{.Name}}", cname); err != nil || !strings.Contains(out, cname) {
		t.Errorf("%s is gone: %v %s", cname, err, out)
	}
}

// testSettings: containerlab's node settings reach the container: entrypoint
// and cmd, env, labels, a bind, a sysctl, a memory limit, and a port
// published in the host's namespace that reaches a server in the node.
func testSettings(t *testing.T, rt *docker.Runtime, h *testbed.Host, lab string) {
	ctx := t.Context()
	bound := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(bound, []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := runtime.NodeSpec{Lab: lab, Name: "web", Image: "netloom/busybox:latest",
		Interfaces: []runtime.InterfaceSpec{{Name: "eth1"}},
		Container: &wire.Container{
			Entrypoint: "/bin/sh -c",
			Cmd:        `"mkdir -p /www && echo hello > /www/index.html && httpd -f -p 8080 -h /www"`,
			Env:        map[string]string{"GREETING": "hi there"},
			Labels:     map[string]string{"team": "blue"},
			Binds:      []string{bound + ":/etc/motd:ro"},
			Sysctls:    map[string]string{"net.ipv4.ip_forward": "1"},
			Memory:     "64MB",
			Ports:      []string{"127.0.0.1:18080:8080"},
		}}
	if _, err := rt.CreateNode(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.DeleteNode(context.Background(), lab, "web"); err != nil {
			t.Error(err)
		}
	})
	for cmd, want := range map[string]string{
		"echo $GREETING":                                   "hi there",
		"cat /etc/motd":                                    "from the host",
		"cat /proc/sys/net/ipv4/ip_forward":                "1",
		"cat /proc/sys/net/ipv6/conf/default/disable_ipv6": "0",
	} {
		if out, err := runtimetest.Shell(ctx, rt, lab, "web", cmd); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("%s: %q, %v; want %q", cmd, out, err, want)
		}
	}
	// The server starts in the background of the container's command.
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: h.DialContext}}
		resp, err := c.Get("http://127.0.0.1:18080/index.html")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); body == "hello\n" {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body != "hello\n" {
		t.Errorf("published port 18080: body %q, want the node's page", body)
	}
	if err := rt.DeleteNode(ctx, lab, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DialContext(ctx, "tcp", "127.0.0.1:18080"); err == nil {
		t.Error("the published port is still open after the node was deleted")
	}
}
