package controller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// portAgent answers port-state as told and records retags and pairings.
type portAgent struct {
	mu       sync.Mutex
	down     bool
	ports    []wire.PortState
	retags   []string // "port=tag"
	pairings []wire.PortPairing
}

func (f *portAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/port-state"):
		_ = json.NewEncoder(w).Encode(wire.PortStateResponse{Ports: f.ports})
	case strings.HasSuffix(r.URL.Path, "/vlan"):
		var req wire.SetVLANRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.retags = append(f.retags, strings.Split(r.URL.Path, "/")[3]+"="+strconv.Itoa(req.VLANTag))
		_ = json.NewEncoder(w).Encode(wire.SetVLANResponse{Success: true})
	case r.URL.Path == "/ports/declare-state":
		var req wire.PortDeclareRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.pairings = append(f.pairings, req.Pairings...)
		_ = json.NewEncoder(w).Encode(wire.PortDeclareResponse{})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// The port-convergence cases of reference §7.2, against agent doubles.
func TestConvergePorts(t *testing.T) {
	t.Parallel()
	port := func(node, iface string) string { return ident.HostPortName("lab1", node, iface) }
	ps := func(node, iface string, tag int) wire.PortState {
		return wire.PortState{NodeName: node, InterfaceName: iface, OVSPortName: port(node, iface), VLANTag: tag, Carrier: "on"}
	}
	tests := []struct {
		name         string
		a, b         []wire.PortState
		bDown        bool
		wantRetagsA  string
		wantRetagsB  string
		wantPairings int
	}{
		{"all as in the database: pairing sent, nothing retagged",
			[]wire.PortState{ps("r1", "eth1", 2050), ps("r2", "eth1", 2050), ps("r2", "eth2", 2060)}, []wire.PortState{ps("r3", "eth1", 2070)},
			false, "", "", 1},
		{"cross-host sides drifted: each set back to the database tag",
			[]wire.PortState{ps("r1", "eth1", 2050), ps("r2", "eth1", 2050), ps("r2", "eth2", 999)}, []wire.PortState{ps("r3", "eth1", 998)},
			false, port("r2", "eth2") + "=2060", port("r3", "eth1") + "=2070", 1},
		{"ports missing from port-state: nothing done, no new tag (W-17)",
			nil, nil, false, "", "", 0},
		{"a host that cannot answer: its side is left alone",
			[]wire.PortState{ps("r1", "eth1", 2050), ps("r2", "eth1", 2050), ps("r2", "eth2", 999)}, nil,
			true, port("r2", "eth2") + "=2060", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestController(t, time.Minute)
			ctx := t.Context()
			a, b := &portAgent{ports: tt.a}, &portAgent{ports: tt.b, down: tt.bDown}
			for name, f := range map[string]*portAgent{"hostA": a, "hostB": b} {
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				if err := c.store.RegisterHost(ctx, store.Host{Name: name, Address: srv.URL, DataIP: "10.77.0.1"}); err != nil {
					t.Fatal(err)
				}
			}
			lab := topology.Lab{Name: "lab1",
				Nodes: []topology.Node{{Name: "r1", Kind: "linux"}, {Name: "r2", Kind: "linux"}, {Name: "r3", Kind: "linux"}},
				Links: []topology.Link{
					{A: topology.Endpoint{Node: "r1", Iface: "eth1"}, B: topology.Endpoint{Node: "r2", Iface: "eth1"}},
					{A: topology.Endpoint{Node: "r2", Iface: "eth2"}, B: topology.Endpoint{Node: "r3", Iface: "eth1"}},
				}}
			if _, err := c.store.CreateLab(ctx, lab); err != nil {
				t.Fatal(err)
			}
			if err := c.store.SetPlacements(ctx, "lab1", map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}); err != nil {
				t.Fatal(err)
			}
			v, _ := c.store.LabView(ctx, "lab1")
			same, cross := v.Links[0], v.Links[1]
			_ = c.store.SetLinkCreating(ctx, same.ID, "hostA", "hostA")
			_ = c.store.SetSameHostUp(ctx, same.ID, 2050)
			_ = c.store.SetLinkCreating(ctx, cross.ID, "hostA", "hostB")
			if err := c.store.SetCrossHostUp(ctx, store.CrossHostUp{LinkStateID: cross.ID, LabID: "lab1", LinkName: cross.Name, VNI: 5000,
				SourceTag: 2060, TargetTag: 2070, SourceHost: "hostA", SourceIP: "10.77.0.1", TargetHost: "hostB", TargetIP: "10.77.0.2"}); err != nil {
				t.Fatal(err)
			}
			st, err := c.readConvState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.convergePorts(ctx, nil, st); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(a.retags, ","); got != tt.wantRetagsA {
				t.Errorf("hostA retags %q, want %q", got, tt.wantRetagsA)
			}
			if got := strings.Join(b.retags, ","); got != tt.wantRetagsB {
				t.Errorf("hostB retags %q, want %q", got, tt.wantRetagsB)
			}
			if len(a.pairings) != tt.wantPairings {
				t.Fatalf("pairings %+v, want %d", a.pairings, tt.wantPairings)
			}
			if tt.wantPairings == 1 {
				p := a.pairings[0]
				if p.PortA != port("r1", "eth1") || p.PortB != port("r2", "eth1") || p.VLANTag != 2050 {
					t.Errorf("pairing %+v", p)
				}
			}
			// What was seen is recorded, with the time it was seen.
			v, _ = c.store.LabView(ctx, "lab1")
			for _, m := range v.Maps {
				if m.LastVerifiedAt == nil {
					t.Errorf("mapping %+v never verified", m)
				}
			}
			if len(v.Maps) != len(tt.a)+len(tt.b)*boolInt(!tt.bDown) {
				t.Errorf("%d mappings written, want one per reported port", len(v.Maps))
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
