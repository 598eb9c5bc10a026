package agent_test

import (
	"net/netip"
	"strings"
	"testing"

	agentclient "github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/wire"
)

// TestHostNodeAndAddresses declares a node with an address and the host
// pseudo-node with a gateway address on one tag, as a management network
// is, and proves with packets both ways that the host and the node talk;
// then moves the node's address, repairs the gateway's port set down by
// hand, and declares the host pseudo-node away.
func TestHostNodeAndAddresses(t *testing.T) {
	a := newAgentHost(t)
	lab := a.lab
	const tag, gw = 2400, "nlmtest0"
	gwPort := ident.HostPortName(lab, runtime.HostNode, gw)
	decl := func(g int64, r1Addr string, withHost bool) wire.HostDeclaration {
		d := wire.HostDeclaration{Generation: gen(g), DeclaredLabs: []string{lab}, Nodes: []wire.DeclaredNode{
			{LabID: lab, Name: "r1", Interfaces: []wire.DeclaredInterface{{Name: "eth0", VLANTag: tag, Addresses: []string{r1Addr}}}},
		}}
		if withHost {
			d.Nodes = append(d.Nodes, wire.DeclaredNode{LabID: lab, Name: runtime.HostNode,
				Interfaces: []wire.DeclaredInterface{{Name: gw, VLANTag: tag, Addresses: []string{"172.20.20.254/24"}}}})
		}
		return d
	}
	fromHost := func(t *testing.T, to string) int {
		t.Helper()
		got, err := a.host.Ping(t.Context(), netip.MustParseAddr(to), 2)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	linkExists := func(name string) bool {
		_, err := a.host.Exec(t.Context(), "ip", "link", "show", name)
		return err == nil
	}

	t.Run("a node and the host on one tag talk", func(t *testing.T) {
		r := a.declareHost(t, decl(1, "172.20.20.2/24", true))
		if got, want := statusSet(r), "host created, host:"+gw+" created, r1 created, r1:eth0 created"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		if tags, _ := a.bridgePorts(t); tags[gwPort] != tag || tags[ident.HostPortName(lab, "r1", "eth0")] != tag {
			t.Errorf("bridge tags %v: want %s and r1's port on %d", tags, gwPort, tag)
		}
		if got := fromHost(t, "172.20.20.2"); got != 2 {
			t.Errorf("host → r1: %d/2", got)
		}
		if got := a.ping(t, "r1", "172.20.20.254"); got != 2 {
			t.Errorf("r1 → host: %d/2", got)
		}
	})

	t.Run("the same again is converged", func(t *testing.T) {
		r := a.declareHost(t, decl(2, "172.20.20.2/24", true))
		if got, want := statusSet(r), "host converged, host:"+gw+" converged, r1 converged, r1:eth0 converged"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
	})

	t.Run("exec in the host is refused", func(t *testing.T) {
		body, err := agentclient.New("http://"+apiAddr, token, a.http).Exec(t.Context(), wire.ExecRequest{LabID: lab, Node: runtime.HostNode, Argv: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		if _, err := wire.ReadExecFrames(body, func(wire.ExecFrame) error { return nil }); err == nil || !strings.Contains(err.Error(), "run the command on the host") {
			t.Errorf("exec in host: %v", err)
		}
	})

	t.Run("a changed address moves", func(t *testing.T) {
		r := a.declareHost(t, decl(3, "172.20.20.3/24", true))
		if got, want := statusSet(r), "host converged, host:"+gw+" converged, r1 updated, r1:eth0 converged"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		if got := fromHost(t, "172.20.20.3"); got != 2 {
			t.Errorf("host → r1's new address: %d/2", got)
		}
		if got := fromHost(t, "172.20.20.2"); got != 0 {
			t.Errorf("host → r1's old address: %d/2, want none", got)
		}
	})

	t.Run("the gateway's port set down is repaired", func(t *testing.T) {
		if _, err := a.host.Exec(t.Context(), "ip", "link", "set", gwPort, "down"); err != nil {
			t.Fatal(err)
		}
		took := a.waitFor(t, gwPort+" up again", func() bool {
			out, err := a.host.Exec(t.Context(), "ip", "-o", "link", "show", gwPort)
			return err == nil && strings.Contains(out, ",UP")
		})
		t.Logf("repaired after %v", took)
		if got := fromHost(t, "172.20.20.3"); got != 2 {
			t.Errorf("host → r1 after the repair: %d/2", got)
		}
	})

	t.Run("the host declared away leaves nothing of it", func(t *testing.T) {
		r := a.declareHost(t, decl(4, "172.20.20.3/24", false))
		if got, want := statusSet(r), "host removed, host:"+gw+" removed, r1 converged, r1:eth0 converged"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		if linkExists(gw) || linkExists(gwPort) {
			t.Errorf("%s there %v, %s there %v: want both gone", gw, linkExists(gw), gwPort, linkExists(gwPort))
		}
		if tags, _ := a.bridgePorts(t); len(tags) != 1 {
			t.Errorf("bridge ports %v: want r1's alone", tags)
		}
	})

	a.declareHost(t, wire.HostDeclaration{DeclaredLabs: []string{lab}, Generation: gen(5)})
	if tags, _ := a.bridgePorts(t); len(tags) != 0 {
		t.Errorf("ports left %v", tags)
	}
}
