package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/netloom/netloom/internal/runtime/docker"
)

// frrTag is the name a lab file gives FRR's own image; the test runs ours
// under it.
const frrTag = "quay.io/frrouting/frr:10.2.1"

// TestFRRImage loads the frr image into a private daemon twice, the second
// time from the cached tarball and under a lab file's image name, and
// proves FRR runs in containers of it: vtysh answers, zebra and watchfrr
// run, and two of them joined by a veth pair reach OSPF Full and route to
// each other's loopback.
func TestFRRImage(t *testing.T) {
	ctx := t.Context()
	bed := Start(t)
	dk, err := bed.StartDocker(ctx, "frr")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := dk.LoadImages(ctx, "frr"); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	cached, err := frrTarball()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := dk.LoadImages(ctx, "frr="+frrTag); err != nil {
		t.Fatal(err)
	}
	second := time.Since(start)
	again, err := frrTarball()
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(cached, again) || !cached.ModTime().Equal(again.ModTime()) {
		t.Errorf("the second load rebuilt the cached tarball %s", cached.Name())
	}
	t.Logf("frr image: first load %v, second load (cached) %v", first.Round(time.Millisecond), second.Round(time.Millisecond))

	c := docker.NewClient(dk.Socket)
	r1 := runFRR(t, c, "r1")
	r2 := runFRR(t, c, "r2")
	for _, cmd := range [][]string{{"ip", "-V"}, {"ping", "-V"}} {
		if out, code, err := c.Exec(ctx, r1, cmd); err != nil || code != 0 {
			t.Errorf("%s: exit %d, err %v: %s", strings.Join(cmd, " "), code, err, out)
		}
	}
	out, code, err := c.Exec(ctx, r1, []string{"ps", "-e", "-o", "comm="})
	if err != nil || code != 0 {
		t.Fatalf("ps: exit %d, err %v: %s", code, err, out)
	}
	for _, daemon := range []string{"watchfrr", "zebra"} {
		if !strings.Contains(out, daemon) {
			t.Errorf("%s does not run: ps shows %q", daemon, out)
		}
	}

	// OSPF needs ospfd, off in the image's /etc/frr/daemons; the link comes
	// after FRR started, as a node's interfaces do.
	for _, r := range []string{r1, r2} {
		frrExec(t, c, r, "sed", "-i", "s/^ospfd=no/ospfd=yes/", "/etc/frr/daemons")
		frrExec(t, c, r, "/usr/lib/frr/frrinit.sh", "restart")
		waitFRR(t, c, r, "ospfd")
	}
	linkContainers(t, c, r1, r2)
	for i, r := range []string{r1, r2} {
		n := i + 1
		frrExec(t, c, r, "ip", "addr", "add", fmt.Sprintf("10.99.0.%d/30", n), "dev", "eth1")
		frrExec(t, c, r, "ip", "link", "set", "eth1", "up")
		frrExec(t, c, r, "ip", "addr", "add", fmt.Sprintf("10.99.255.%d/32", n), "dev", "lo")
		frrExec(t, c, r, "vtysh", "-c", "configure terminal",
			"-c", "interface eth1", "-c", "ip ospf network point-to-point",
			"-c", "ip ospf hello-interval 1", "-c", "ip ospf dead-interval 4", "-c", "exit",
			"-c", "router ospf", "-c", fmt.Sprintf("ospf router-id 10.99.255.%d", n),
			"-c", "network 10.99.0.0/30 area 0", "-c", fmt.Sprintf("network 10.99.255.%d/32 area 0", n))
	}
	for _, w := range []struct{ r, peer string }{{r1, "10.99.255.2"}, {r2, "10.99.255.1"}} {
		err := wait(ctx, 30*time.Second, "OSPF Full and a route to "+w.peer+" in "+w.r, func() (bool, error) {
			nbr, _, err := c.Exec(ctx, w.r, []string{"vtysh", "-c", "show ip ospf neighbor"})
			if err != nil {
				return false, err
			}
			route, _, err := c.Exec(ctx, w.r, []string{"ip", "route", "show", w.peer})
			return strings.Contains(nbr, "Full") && strings.Contains(route, "proto ospf"), err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out, code, err = c.Exec(ctx, r1, []string{"ping", "-c", "2", "-W", "2", "-I", "10.99.255.1", "10.99.255.2"})
	if err != nil || code != 0 {
		t.Errorf("ping r1 → r2 loopback over OSPF: exit %d, err %v: %s", code, err, out)
	}
}

// frrTarball returns the cached root filesystem of the frr image, the only
// one of scripts/images.sh's cache.
func frrTarball() (os.FileInfo, error) {
	dir := os.Getenv("NETLOOM_IMAGE_CACHE")
	if dir == "" {
		dir = "/var/cache/netloom/images"
	}
	tars, err := filepath.Glob(filepath.Join(dir, "frr-*.tar"))
	if err != nil {
		return nil, err
	}
	if len(tars) != 1 {
		return nil, fmt.Errorf("image cache %s: frr tarballs %v, want one", dir, tars)
	}
	return os.Stat(tars[0])
}

// runFRR starts a container of the frr image the way the Docker runtime
// does (no network, the runtime's capabilities) and waits for FRR in it.
// The bed removes it.
func runFRR(t *testing.T, c *docker.Client, name string) string {
	t.Helper()
	req := docker.CreateRequest{Image: frrTag, Hostname: name}
	req.HostConfig.NetworkMode = "none"
	req.HostConfig.CapAdd = []string{"NET_ADMIN", "SYS_ADMIN", "NET_RAW"}
	id, err := c.Create(t.Context(), name, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitFRR(t, c, id, "zebra")
	return id
}

// waitFRR waits until vtysh reaches the daemon in the container.
func waitFRR(t *testing.T, c *docker.Client, id, daemon string) {
	t.Helper()
	var out string
	err := wait(t.Context(), 20*time.Second, daemon+" in "+id[:12], func() (bool, error) {
		var code int
		var err error
		out, code, err = c.Exec(t.Context(), id, []string{"vtysh", "-d", daemon, "-c", "show version"})
		return err == nil && code == 0, nil
	})
	if err != nil {
		t.Fatalf("%v: vtysh: %s", err, out)
	}
}

// frrExec runs a command in a container and fails the test unless it
// succeeds.
func frrExec(t *testing.T, c *docker.Client, id string, cmd ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, code, err := c.Exec(ctx, id, cmd)
	if err != nil || code != 0 {
		t.Fatalf("%s in %s: exit %d, err %v: %s", strings.Join(cmd, " "), id[:12], code, err, out)
	}
}

// linkContainers joins two containers by a veth pair named eth1 on both
// sides, made straight in their namespaces: nothing of it is ever in the
// test's own, and it goes with the containers.
func linkContainers(t *testing.T, c *docker.Client, a, b string) {
	t.Helper()
	var ns [2]vnetns.NsHandle
	for i, id := range []string{a, b} {
		ct, err := c.Inspect(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ns[i], err = vnetns.GetFromPath(ct.SandboxKey); err != nil {
			t.Fatalf("namespace of %s: %v", id[:12], err)
		}
		defer ns[i].Close()
	}
	h, err := netlink.NewHandleAt(ns[0])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "eth1", PeerNamespace: netlink.NsFd(ns[1])}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("veth between %s and %s: %v", a[:12], b[:12], err)
	}
}
