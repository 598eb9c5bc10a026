package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// Errors of an exec, beside the store's ErrNotFound.
var (
	errNotPlaced  = errors.New("not placed on a host")  // 404
	errNotRunning = errors.New("not running")           // 404: its agent does not find it
	errAgentDown  = errors.New("agent does not answer") // 502
)

// serveExec runs a command in a node through its host's agent and relays
// the agent's frames as they come, each flushed at once. The command lives
// as long as this request: when the client goes, so does the agent's
// request, and the agent ends the command.
func (c *Controller) serveExec(w http.ResponseWriter, r *http.Request) {
	lab, node := r.PathValue("lab"), r.PathValue("node")
	var req wire.ExecRequest
	err := decodeJSON(r, &req)
	if err == nil {
		err = errors.Join(wire.ValidateNode(node), req.Validate(false))
	}
	if err != nil {
		c.respond(w, r, 0, nil, err)
		return
	}
	// A body read to its end lets the server notice a client that goes, so
	// r.Context() ends the agent's request then, however silent the command.
	_, _ = io.Copy(io.Discard, r.Body)
	h, labID, err := c.execTarget(r.Context(), lab, node)
	if err != nil {
		c.respond(w, r, 0, nil, err)
		return
	}
	req.LabID, req.Node = labID, node
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	body, err := c.startExec(ctx, cancel, h, req)
	if err != nil {
		c.respond(w, r, 0, nil, err)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", wire.ExecContentType)
	w.WriteHeader(http.StatusOK)
	enc, rc := json.NewEncoder(w), http.NewResponseController(w)
	code, err := wire.ReadExecFrames(body, func(f wire.ExecFrame) error {
		if err := enc.Encode(f); err != nil {
			return err
		}
		return rc.Flush()
	})
	last := wire.ExecFrame{ExitCode: &code}
	if err != nil {
		last = wire.ExecFrame{Error: fmt.Sprintf("host %s: %v", h.Name, err)}
		c.log.Warn("exec failed", "lab", lab, "node", node, "host", h.Name, "err", err)
	}
	_ = enc.Encode(last) // a client that went does not read it
}

// execTarget finds the host a node runs on, and its lab's id.
func (c *Controller) execTarget(ctx context.Context, lab, node string) (store.Host, string, error) {
	v, err := c.store.LabView(ctx, lab)
	if err != nil {
		return store.Host{}, "", err
	}
	i := slices.IndexFunc(v.Nodes, func(n wire.Node) bool { return n.Name == node })
	if i < 0 {
		return store.Host{}, "", fmt.Errorf("lab %s: node %s: %w", lab, node, store.ErrNotFound)
	}
	if v.Nodes[i].PlacedOn == "" {
		return store.Host{}, "", fmt.Errorf("lab %s (%s): node %s: %w", lab, v.State, node, errNotPlaced)
	}
	h, err := c.store.Host(ctx, v.Nodes[i].PlacedOn)
	if err != nil {
		return store.Host{}, "", fmt.Errorf("host %s of node %s: %w", v.Nodes[i].PlacedOn, node, err)
	}
	return h, v.ID, nil
}

// startExec asks the host's agent to run the command and returns its
// answer. The agent has --agent-timeout to answer (it does at once, before
// the command's output), after which startExec calls cancel, the cancel of
// ctx; the command itself may run as long as ctx lasts.
func (c *Controller) startExec(ctx context.Context, cancel context.CancelFunc, h store.Host, req wire.ExecRequest) (io.ReadCloser, error) {
	var late atomic.Bool
	timer := time.AfterFunc(c.cfg.AgentTimeout, func() { late.Store(true); cancel() })
	body, err := c.agent(h).Exec(ctx, req)
	timer.Stop()
	switch {
	case err == nil:
		return body, nil
	case late.Load():
		return nil, fmt.Errorf("exec in node %s: the %w on host %s (%s) within %v", req.Node, errAgentDown, h.Name, h.Address, c.cfg.AgentTimeout)
	case errors.Is(err, client.ErrUnreachable):
		return nil, fmt.Errorf("exec in node %s: the %w on host %s (%s): %v", req.Node, errAgentDown, h.Name, h.Address, err)
	}
	return nil, fmt.Errorf("exec in node %s on host %s: %w", req.Node, h.Name, err)
}
