package controller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// fakeAgent is an agent double: it answers node creation and attach/detach
// as told, and records the calls it got.
type fakeAgent struct {
	mu        sync.Mutex
	calls     []string
	attachOK  bool
	detachOK  bool
	attachTag int
}

func (f *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/nodes"):
		var req wire.CreateNodeRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(wire.NodeResponse{Name: req.Name, Runtime: "netns", RuntimeID: "nl-x-" + req.Name})
	case r.URL.Path == "/overlay/attach-link":
		if !f.attachOK {
			msg := "no such port"
			_ = json.NewEncoder(w).Encode(wire.AttachLinkResponse{Success: false, Error: &msg})
			return
		}
		tag, vni := f.attachTag, 1
		_ = json.NewEncoder(w).Encode(wire.AttachLinkResponse{Success: true, LocalVLAN: &tag, VNI: &vni})
	case r.URL.Path == "/overlay/detach-link":
		if !f.detachOK {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(wire.ErrorResponse{Error: "ovsdb down"})
			return
		}
		_ = json.NewEncoder(w).Encode(wire.DetachLinkResponse{Success: true, TunnelDeleted: true})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeAgent) called(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == call {
			return true
		}
	}
	return false
}

// TestCrossHostRollback makes one side of a cross-host link fail: the other
// side is rolled back, and when that rollback fails too, the link says
// PARTIAL_STATE and which host holds state (W-3).
func TestCrossHostRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		detachOK    bool
		wantPrefix  string
		wantHolding []string
	}{
		{"rollback succeeds", true, "per-link tunnel creation failed: hostB:r2:eth1: no such port", nil},
		{"rollback fails", false, store.PartialStatePrefix + "per-link tunnel creation failed", []string{"hostA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestController(t, time.Minute)
			a := &fakeAgent{attachOK: true, detachOK: tt.detachOK, attachTag: 2050}
			b := &fakeAgent{attachOK: false}
			for name, f := range map[string]*fakeAgent{"hostA": a, "hostB": b} {
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				if err := c.store.RegisterHost(t.Context(), store.Host{Name: name, Address: srv.URL, DataIP: "10.77.0.1"}); err != nil {
					t.Fatal(err)
				}
			}
			lab := topology.Lab{Name: "lab1",
				Nodes: []topology.Node{{Name: "r1", Kind: "linux", Host: "hostA"}, {Name: "r2", Kind: "linux", Host: "hostB"}},
				Links: []topology.Link{{A: topology.Endpoint{Node: "r1", Iface: "eth1"}, B: topology.Endpoint{Node: "r2", Iface: "eth1"}}}}
			if _, err := c.store.CreateLab(t.Context(), lab); err != nil {
				t.Fatal(err)
			}
			resp, err := c.deploy(t.Context(), "lab1")
			if err != nil {
				t.Fatal(err)
			}
			if resp.State != store.LabError || len(resp.Links) != 1 || !strings.HasPrefix(resp.Links[0].Error, tt.wantPrefix) {
				t.Fatalf("deploy %+v, want the link failed with %q", resp, tt.wantPrefix)
			}
			if !a.called("POST /overlay/detach-link") {
				t.Error("the side that attached was not rolled back")
			}
			v, err := c.store.LabView(t.Context(), "lab1")
			if err != nil {
				t.Fatal(err)
			}
			ls := v.Links[0]
			if ls.ActualState != store.LinkError || strings.Join(ls.PartialHosts, ",") != strings.Join(tt.wantHolding, ",") || ls.Tunnel != nil {
				t.Errorf("stored link %+v, want error holding %v and no tunnel row", ls, tt.wantHolding)
			}
		})
	}
}
