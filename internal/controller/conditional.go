package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/wire"
)

// conditions is what the controller knows each agent holds, for
// conditional rounds (wire.HostDeclaration): the digest of the last whole
// declaration an agent took, and the last whole answer it sent. It lives
// in memory only, so a controller that starts sends everything whole.
//
// An unchanged state then crosses the wire as two digests each way, not
// as tens of megabytes of JSON each round, while every agent still checks
// and repairs its whole state each round.
type conditions struct {
	mu sync.Mutex
	// mu guards the following.
	hosts map[string]condition
	// sorted is each host's last whole answer sorted out (declareTo), by
	// the digests of the declaration and the answer it came from: an
	// unchanged answer to 100 000 links is not sorted out again each
	// round.
	sorted map[string]*sortedAnswer
}

// sortedAnswer is a host's answer sorted out, from the declaration and
// answer with digests decl and answer. Nothing changes it once made.
type sortedAnswer struct {
	decl, answer string
	results      map[string]int
	orphans      []string
	a            *hostAnswer
}

// sortedFor returns the host's answer as sorted out before, when it was
// the one with these digests; nil when not.
func (cs *conditions) sortedFor(host, decl, answer string) *sortedAnswer {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if s := cs.sorted[host]; s != nil && s.decl == decl && s.answer == answer {
		return s
	}
	return nil
}

// keepSorted holds a host's answer sorted out for the next rounds.
func (cs *conditions) keepSorted(host string, s *sortedAnswer) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.sorted == nil {
		cs.sorted = map[string]*sortedAnswer{}
	}
	cs.sorted[host] = s
}

// condition is what one agent holds.
type condition struct {
	declared string                        // the digest of its last whole declaration, "" for none
	answer   *wire.HostDeclarationResponse // its last whole answer, with its digest; nil for none
}

func (cs *conditions) get(host string) condition {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.hosts[host]
}

// forget drops what an agent holds, when it registers: it may be another
// process now, even one of a version without conditional declarations.
func (cs *conditions) forget(host string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.hosts, host)
	delete(cs.sorted, host)
}

// answered records an agent's answer to the declaration with digest sum,
// sent when the controller knew k, and returns it whole. Only an agent
// that converged and speaks conditional declarations (its answer has a
// digest) holds sum from now on.
func (cs *conditions) answered(host, sum string, k condition, resp wire.HostDeclarationResponse) (wire.HostDeclarationResponse, error) {
	if resp.SameAnswer {
		if k.answer == nil {
			return resp, fmt.Errorf("declare to %s: the agent answered the same as an answer the controller does not hold", host)
		}
		gen := resp.ObservedGeneration
		resp = *k.answer
		resp.ObservedGeneration = gen
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.hosts == nil {
		cs.hosts = map[string]condition{}
	}
	if resp.Skipped != nil || resp.AnswerDigest == "" {
		delete(cs.hosts, host)
		return resp, nil
	}
	cs.hosts[host] = condition{declared: sum, answer: &resp}
	return resp, nil
}

// declareHost sends a host its declaration: by its digest alone when the
// agent holds it, whole when it does not or says it does not (412), with
// the digest of the last answer the controller holds from it.
func (c *Controller) declareHost(ctx context.Context, ag *client.Client, host string, decl wire.HostDeclaration) (wire.HostDeclarationResponse, error) {
	sum := decl.Digest // held declarations carry theirs
	if sum == "" {
		sum = decl.Sum()
	}
	k := c.conds.get(host)
	whole := decl
	whole.Digest = sum
	req := whole
	if k.declared == sum {
		req = wire.HostDeclaration{Generation: decl.Generation, SameAs: sum}
	}
	if k.answer != nil {
		whole.AnswerDigest, req.AnswerDigest = k.answer.AnswerDigest, k.answer.AnswerDigest
	}
	resp, err := ag.DeclareHost(ctx, req)
	if errors.Is(err, client.ErrNotHeld) && req.SameAs != "" {
		c.log.Debug("declaration not held: sent whole", "host", host, "generation", *decl.Generation)
		resp, err = ag.DeclareHost(ctx, whole)
	}
	if err != nil {
		return resp, err
	}
	return c.conds.answered(host, sum, k, resp)
}
