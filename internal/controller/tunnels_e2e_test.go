package controller_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

const ovsTunnelsLab = `name: %s
topology:
  nodes:
    r1: {host: hostA}
    r2: {host: hostB}
    r3: {host: hostA}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
    - endpoints: ["r3:eth1", "r2:eth2"]
`

// TestOVSTunnelPorts deploys a lab across two hosts whose agents make
// tunnels as OVS's own VXLAN ports (--tunnel-ports ovs), each host's
// underlay on an OVS bridge: the links come up as the agents observed
// them, with no kernel VXLAN device; ping crosses and keeps the two links
// apart; TCP crosses too, which needs the nodes' complete checksums.
func TestOVSTunnelPorts(t *testing.T) {
	t.Parallel()
	c := &cluster{Cluster: testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"}, OVSTunnels: true})}
	c.lab = c.Bed.ID()
	var created store.LabView
	if code := c.Call(t, "POST", "/api/v1/labs", "application/yaml", fmt.Appendf(nil, ovsTunnelsLab, c.lab), &created); code != 201 {
		t.Fatalf("create lab: %d", code)
	}
	var dep wire.DeployResponse
	if code := c.Call(t, "POST", "/api/v1/labs/"+c.lab+"/deploy", "", nil, &dep); code != 200 || dep.State != "running" {
		t.Fatalf("deploy: %d %+v", code, dep)
	}
	// The links are up once the agents' underlay checks between the hosts
	// pass, over the same OVS bridges.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := c.labView(t)
		up := 0
		for _, ls := range v.Links {
			if ls.ActualState == "up" {
				up++
			}
		}
		if up == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("links not up within 30 s: %+v", v.Links)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, h := range []string{"hostA", "hostB"} {
		if devs := vxlanVNIs(t, c.Hosts[h]); len(devs) != 0 {
			t.Errorf("%s: kernel VXLAN devices %v, want none", h, devs)
		}
		out, err := c.Hosts[h].VSCtl(t.Context(), "--format=csv", "--data=bare", "--no-headings", "--columns=name,type", "find", "Interface", "type=vxlan")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, ",vxlan"); n == 0 {
			t.Errorf("%s: no OVS VXLAN interface:\n%s", h, out)
		}
	}
	c.addr(t, "r1", "eth1", "192.168.90.1/24")
	c.addr(t, "r2", "eth1", "192.168.90.2/24")
	c.addr(t, "r2", "eth2", "192.168.91.2/24")
	c.addr(t, "r3", "eth1", "192.168.91.3/24")
	c.addr(t, "r3", "eth1", "192.168.90.3/24") // on the other link, not r1's
	for _, tt := range []struct {
		from, to string
		want     int
	}{{"r1", "192.168.90.2", 3}, {"r3", "192.168.91.2", 3}, {"r1", "192.168.90.3", 0}} {
		if got := c.ping(t, tt.from, tt.to); got != tt.want {
			t.Errorf("%s → %s: %d/3, want %d", tt.from, tt.to, got, tt.want)
		}
	}
	if got, err := tcpTransfer(c.lab, "r1", "r2", "192.168.90.2:5001", 1<<20); err != nil || got != 1<<20 {
		t.Errorf("TCP r1 → r2 across the tunnel: %d of %d bytes: %v", got, 1<<20, err)
	}
}

// tcpTransfer sends n bytes over TCP from node from to a listener on addr
// in node to, and returns how many arrived.
func tcpTransfer(lab, from, to, addr string, n int) (int, error) {
	var ln net.Listener
	err := nlns.Do(filepath.Join(nlns.Dir, ident.NamespaceName(lab, to)), func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		m, _ := io.Copy(io.Discard, conn)
		got <- int(m)
	}()
	var conn net.Conn
	err = nlns.Do(filepath.Join(nlns.Dir, ident.NamespaceName(lab, from)), func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	if err != nil {
		return 0, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, werr := io.Copy(conn, bytes.NewReader(make([]byte, n)))
	conn.Close()
	return <-got, werr
}
