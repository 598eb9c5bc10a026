// Package agenttest is an agent double for tests and benchmarks of the
// controller: an http.Handler that answers the agent API like an agent
// whose host already holds everything declared to it.
package agenttest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/netloom/netloom/internal/wire"
)

// Converged reports every declared tunnel and pairing converged, and
// answers port-state with the ports set for each lab.
type Converged struct {
	mu sync.Mutex
	// mu guards the following.
	ports map[string][]wire.PortState // by lab
	calls int
}

// AddPort makes port-state of lab report p.
func (a *Converged) AddPort(lab string, p wire.PortState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ports == nil {
		a.ports = map[string][]wire.PortState{}
	}
	a.ports[lab] = append(a.ports[lab], p)
}

// Calls returns how many requests the double answered.
func (a *Converged) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func (a *Converged) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/overlay/declare-state":
		var req wire.DeclareStateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		resp := wire.DeclareStateResponse{ObservedGeneration: req.Generation}
		for _, t := range req.Tunnels {
			resp.Results = append(resp.Results, wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName, Status: wire.StatusConverged})
		}
		_ = json.NewEncoder(w).Encode(resp)
	case strings.HasPrefix(r.URL.Path, "/labs/") && strings.HasSuffix(r.URL.Path, "/port-state"):
		lab := strings.Split(r.URL.Path, "/")[2]
		_ = json.NewEncoder(w).Encode(wire.PortStateResponse{Ports: append([]wire.PortState{}, a.ports[lab]...)})
	case r.URL.Path == "/ports/declare-state":
		var req wire.PortDeclareRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		var resp wire.PortDeclareResponse
		for _, p := range req.Pairings {
			tag := p.VLANTag
			resp.Results = append(resp.Results, wire.PortResult{LinkName: p.LinkName, LabID: p.LabID, Status: wire.StatusConverged, ActualVLAN: &tag})
		}
		_ = json.NewEncoder(w).Encode(resp)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}
