// Package client is the typed client of the agent API (DESIGN §6), used by
// the controller. It maps status codes back to sentinel errors, so a caller
// branches on errors.Is, never on message text (W-19).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/netloom/netloom/internal/wire"
)

// Sentinel errors, from the agent's status code or the transport.
var (
	// ErrUnreachable: no answer came (connection refused, timeout, reset).
	ErrUnreachable = errors.New("agent unreachable")
	// ErrAgentFailed: the agent answered, with a server error (5xx) or a
	// status it does not send: it is up, but could not do the work.
	ErrAgentFailed     = errors.New("agent failed")
	ErrUnauthorized    = errors.New("agent refused the token")
	ErrNotFound        = errors.New("not found on the agent") // also: an agent without the endpoint
	ErrConflict        = errors.New("conflict on the agent")
	ErrStaleGeneration = ErrConflict
	ErrBadRequest      = errors.New("agent rejected the request")
	// ErrNotHeld: the agent does not hold the declaration a conditional
	// one (same_as) names; send it whole (412).
	ErrNotHeld = errors.New("declaration not held by the agent")
)

// Client talks to one agent.
type Client struct {
	base       string
	token      string
	credential string
	controller string
	http       *http.Client
}

// New returns a client of the agent at base (e.g. "http://10.77.0.1:7401").
// hc sets the transport and its timeouts; nil uses http.DefaultClient, and
// the caller's context bounds each call.
func New(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: hc}
}

// WithCredential returns the client, sending the host's credential with
// each call ("" for a host without one).
func (c *Client) WithCredential(credential string) *Client {
	c.credential = credential
	return c
}

// From returns the client, naming the controller id on each call.
func (c *Client) From(id string) *Client {
	c.controller = id
	return c
}

// authorize sets the agent token, the host's credential and the calling
// controller on a request.
func (c *Client) authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.credential != "" {
		req.Header.Set(wire.CredentialHeader, c.credential)
	}
	if c.controller != "" {
		req.Header.Set(wire.ControllerHeader, c.controller)
	}
}

// do sends one request and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	c.authorize(req)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrUnreachable, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrUnreachable, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerErr(method, path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// answerErr is the error of a non-2xx answer: its sentinel, with the
// agent's message.
func answerErr(method, path string, code int, body []byte) error {
	var e wire.ErrorResponse
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return fmt.Errorf("%w: %s %s: %d: %s", statusErr(code), method, path, code, msg)
}

func statusErr(code int) error {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusPreconditionFailed:
		return ErrNotHeld
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return ErrBadRequest
	default:
		return ErrAgentFailed
	}
}

// DeclareState sends the host's full desired tunnel set.
func (c *Client) DeclareState(ctx context.Context, req wire.DeclareStateRequest) (wire.DeclareStateResponse, error) {
	var resp wire.DeclareStateResponse
	return resp, c.do(ctx, http.MethodPost, "/overlay/declare-state", req, &resp)
}

// DeclareHost sends everything netloom wants on the agent's host: nodes,
// their interfaces and tunnels (DESIGN §11).
func (c *Client) DeclareHost(ctx context.Context, req wire.HostDeclaration) (wire.HostDeclarationResponse, error) {
	var resp wire.HostDeclarationResponse
	return resp, c.do(ctx, http.MethodPost, "/host/declare-state", req, &resp)
}

// Health asks whether the agent serves; it answers at once, whatever its
// converger is busy with.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// ReconcilePorts is the old whitelist call.
func (c *Client) ReconcilePorts(ctx context.Context, req wire.ReconcilePortsRequest) (wire.ReconcilePortsResponse, error) {
	var resp wire.ReconcilePortsResponse
	return resp, c.do(ctx, http.MethodPost, "/overlay/reconcile-ports", req, &resp)
}

// Exec runs a command in a node of the agent's host and returns its answer
// once the agent starts it: one wire.ExecFrame per line, for
// wire.ReadExecFrames; the caller closes it. Ending ctx ends the command.
func (c *Client) Exec(ctx context.Context, req wire.ExecRequest) (io.ReadCloser, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	const path = "/host/exec"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	c.authorize(hreq)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: POST %s: %v", ErrUnreachable, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, answerErr(http.MethodPost, path, resp.StatusCode, body)
	}
	return resp.Body, nil
}
