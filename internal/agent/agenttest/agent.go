// Package agenttest is an agent double for tests and benchmarks of the
// controller: an http.Handler that answers the agent API like an agent
// whose host already holds everything declared to it, or, when told, like
// one whose bridge refuses some of it.
package agenttest

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/wire"
)

// Converged reports every declared node, interface and tunnel converged,
// but those it was told to fail. It takes conditional declarations as an
// agent does: it holds each host's last whole declaration by its digest
// (a host is the address a request was sent to), answers 412 to a same_as
// it does not hold, and answers same_answer when its answer is the one
// whose digest the declaration carried.
type Converged struct {
	// Forget keeps no declarations (Declared returns none): a benchmark
	// that declares to many hosts for many rounds holds no memory for them
	// but each host's last.
	Forget bool

	mu sync.Mutex
	// mu guards the following.
	calls    int
	fail     string // every interface and tunnel fails with it
	skip     bool
	declared []wire.HostDeclaration
	held     map[string]*holding // by host
}

// holding is what a host holds: its last whole declaration with a digest,
// and the digest of its last answer to it, with the failure it answered
// under. The double's answer follows from those alone, so the same again
// is known to have the same digest without making it.
type holding struct {
	decl wire.HostDeclaration
	fail string
	sum  string // "" until answered
}

// ForgetHeld drops what every host holds, as agents that lost their caches.
func (a *Converged) ForgetHeld() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held = nil
}

// Fail makes every declared interface and tunnel fail with reason from now
// on ("" heals).
func (a *Converged) Fail(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = reason
}

// Skip makes the double answer like an agent that cannot read its bridge.
func (a *Converged) Skip(skip bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.skip = skip
}

// Calls returns how many requests the double answered.
func (a *Converged) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// Declared returns the host declarations the double got, in order; a
// conditional one as the whole declaration it stood for, with its SameAs.
func (a *Converged) Declared() []wire.HostDeclaration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]wire.HostDeclaration{}, a.declared...)
}

func (a *Converged) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls++
	fail, skip := a.fail, a.skip
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/host/declare-state":
		var req wire.HostDeclaration
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req, h, ok := a.whole(r.Host, req)
		if !ok {
			w.WriteHeader(http.StatusPreconditionFailed)
			_ = json.NewEncoder(w).Encode(wire.ErrorResponse{Error: "declaration " + req.SameAs + " not held: send it whole"})
			return
		}
		_ = json.NewEncoder(w).Encode(a.answerTo(h, req, fail, skip))
	case "/overlay/declare-state":
		var req wire.DeclareStateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		resp := wire.DeclareStateResponse{ObservedGeneration: req.Generation}
		for _, t := range req.Tunnels {
			resp.Results = append(resp.Results, wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName, Status: wire.StatusConverged})
		}
		_ = json.NewEncoder(w).Encode(resp)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// whole returns the whole declaration req stands for on host, and records
// it, with what host holds (nil: nothing); false when req is conditional
// and host does not hold what it names.
func (a *Converged) whole(host string, req wire.HostDeclaration) (wire.HostDeclaration, *holding, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held == nil {
		a.held = map[string]*holding{}
	}
	h := a.held[host]
	switch {
	case req.SameAs == "":
		delete(a.held, host)
		h = nil
		if req.Digest != "" {
			h = &holding{decl: req}
			a.held[host] = h
		}
	case h == nil || h.decl.Digest != req.SameAs:
		return req, nil, false
	default:
		same := h.decl
		same.Generation, same.SameAs, same.AnswerDigest = req.Generation, req.SameAs, req.AnswerDigest
		req = same
	}
	if !a.Forget {
		a.declared = append(a.declared, req)
	}
	return req, h, true
}

// answerTo is the answer as an agent sends it: its generation alone when
// its digest is the one req carries, else whole with its digest.
func (a *Converged) answerTo(h *holding, req wire.HostDeclaration, fail string, skip bool) wire.HostDeclarationResponse {
	same := wire.HostDeclarationResponse{ObservedGeneration: req.Generation, SameAnswer: true}
	a.mu.Lock()
	known := h != nil && !skip && h.sum != "" && h.fail == fail && h.sum == req.AnswerDigest
	a.mu.Unlock()
	if known {
		return same
	}
	resp := answer(req, fail, skip)
	if skip {
		return resp
	}
	resp.AnswerDigest = resp.Sum()
	if h != nil {
		a.mu.Lock()
		h.fail, h.sum = fail, resp.AnswerDigest
		a.mu.Unlock()
	}
	if resp.AnswerDigest == req.AnswerDigest {
		return same
	}
	return resp
}

// answer converges everything declared, or fails every interface and
// tunnel with fail, or skips.
func answer(req wire.HostDeclaration, fail string, skip bool) wire.HostDeclarationResponse {
	resp := wire.HostDeclarationResponse{ObservedGeneration: req.Generation, Nodes: []wire.NodeStatus{}, Interfaces: []wire.InterfaceStatus{},
		Tunnels: []wire.TunnelResult{}}
	if skip {
		s := wire.SkippedOVSReadError
		resp.Skipped = &s
		return resp
	}
	status, why := wire.StatusConverged, (*string)(nil)
	if fail != "" {
		reason := fail
		status, why = wire.StatusError, &reason
	}
	for _, n := range req.Nodes {
		resp.Nodes = append(resp.Nodes, wire.NodeStatus{LabID: n.LabID, Name: n.Name, Status: wire.StatusConverged, RuntimeID: ident.NamespaceName(n.LabID, n.Name)})
		for _, i := range n.Interfaces {
			tag := i.VLANTag
			resp.Interfaces = append(resp.Interfaces, wire.InterfaceStatus{LabID: n.LabID, Node: n.Name, Interface: i.Name,
				PortName: ident.HostPortName(n.LabID, n.Name, i.Name), Status: status, ActualVLAN: &tag, Error: why})
		}
	}
	for _, t := range req.Tunnels {
		tag := t.ExpectedVLAN
		resp.Tunnels = append(resp.Tunnels, wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName, Status: status, ActualVLAN: &tag, Error: why})
	}
	return resp
}
