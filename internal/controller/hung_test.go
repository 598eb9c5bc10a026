package controller

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
)

// TestHungHostIsolated: while a round waits on a host that accepts and
// never answers, a lab on another host deploys, converges and is destroyed
// at once, and the hung host shows degraded once its declaration is given
// up.
func TestHungHostIsolated(t *testing.T) {
	t.Parallel()
	c, _ := newTestController(t, time.Minute)
	c.cfg.AgentTimeout = 6 * time.Second
	ctx := t.Context()
	serveHosts(t, c, map[string]http.Handler{"hostB": &agenttest.Converged{}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := testbed.Hang(t, ln)
	if _, err := c.store.RegisterHost(ctx, store.Host{Name: "hung", Address: "http://" + ln.Addr().String(), DataIP: "10.77.0.9"}); err != nil {
		t.Fatal(err)
	}
	lab := topology.Lab{Name: "other", Nodes: []topology.Node{{Name: "r1", Kind: "linux", Host: "hostB"}, {Name: "r2", Kind: "linux", Host: "hostB"}},
		Links: []topology.Link{{A: topology.Endpoint{Node: "r1", Iface: "eth1"}, B: topology.Endpoint{Node: "r2", Iface: "eth1"}}}}
	if _, err := c.store.CreateLab(ctx, lab); err != nil {
		t.Fatal(err)
	}

	full := make(chan error, 1)
	go func() { _, err := c.converge(ctx, nil, nil); full <- err }()
	<-accepted // the full round is waiting on the hung host

	const bound = 3 * time.Second // half the hung host's timeout
	start := time.Now()
	d, err := c.deploy(ctx, "other")
	deployed := time.Since(start)
	if err != nil || d.State != store.LabRunning {
		t.Fatalf("deploy: %+v %v", d, err)
	}
	start = time.Now()
	if _, err := c.converge(ctx, map[string]bool{"hostB": true}, nil); err != nil {
		t.Fatal(err)
	}
	converged := time.Since(start)
	start = time.Now()
	if d, err = c.destroy(ctx, "other"); err != nil || d.State != store.LabStopped {
		t.Fatalf("destroy: %+v %v", d, err)
	}
	destroyed := time.Since(start)
	t.Logf("with a hung host: deploy %v, converge %v, destroy %v", deployed, converged, destroyed)
	for what, took := range map[string]time.Duration{"deploy": deployed, "converge": converged, "destroy": destroyed} {
		if took > bound {
			t.Errorf("%s took %v, waiting on the hung host", what, took)
		}
	}

	if err := <-full; err != nil {
		t.Fatal(err)
	}
	h, err := c.store.Host(ctx, "hung")
	if err != nil {
		t.Fatal(err)
	}
	if v := c.hostView(h); v.Status != "degraded" || !strings.HasPrefix(v.StatusReason, "no answer in ") || v.DegradedSince == nil {
		t.Errorf("hung host %+v: want degraded, no answer", v)
	}
	b, err := c.store.Host(ctx, "hostB")
	if err != nil {
		t.Fatal(err)
	}
	if v := c.hostView(b); v.Status != "online" || v.LastDeclaration == nil {
		t.Errorf("hostB %+v: want online, declared", v)
	}
}
