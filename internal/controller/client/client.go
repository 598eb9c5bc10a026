// Package client is the typed client of the controller's REST API, used by
// the CLI and the demo. Status codes come back as sentinel errors; the
// controller's message is the error's text, or, when it listed problems,
// each problem on its own line (Problems gives them, with their positions
// in a lab file).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// Sentinel errors by status code.
var (
	ErrUnreachable  = errors.New("controller unreachable")
	ErrUnauthorized = errors.New("the controller refused the token")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
)

// Client talks to a controller, one of several on a database.
type Client struct {
	bases   []string
	cur     atomic.Int32 // the base that answered last
	token   string
	http    *http.Client
	timeout time.Duration
}

// New returns a client of the controller at base, e.g.
// "http://10.0.0.10:7400", or of whichever of several, comma-separated,
// answers; hc nil uses http.DefaultClient. A positive timeout bounds each
// request, answer included: a controller that does not answer in time is
// ErrUnreachable, with an error that names the timeout.
func New(base, token string, hc *http.Client, timeout time.Duration) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{token: token, http: hc, timeout: timeout}
	for _, b := range strings.Split(base, ",") {
		if b = strings.TrimRight(strings.TrimSpace(b), "/"); b != "" {
			c.bases = append(c.bases, b)
		}
	}
	return c
}

// send sends a request to the controller that answered last, or, when it
// cannot be reached at all, to the next: a request that reached none was
// done by none, so trying another is safe whatever it asks.
func (c *Client) send(ctx context.Context, method, path, ctype string, body []byte) (*http.Response, error) {
	if len(c.bases) == 0 {
		return nil, fmt.Errorf("%w: no controller URL", ErrUnreachable)
	}
	first := int(c.cur.Load())
	var err error
	for i := range c.bases {
		k := (first + i) % len(c.bases)
		req, rerr := http.NewRequestWithContext(ctx, method, c.bases[k]+"/api/v1"+path, bytes.NewReader(body))
		if rerr != nil {
			return nil, rerr
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		var resp *http.Response
		if resp, err = c.http.Do(req); err == nil {
			c.cur.Store(int32(k))
			return resp, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

// base names the controllers for messages.
func (c *Client) base() string { return strings.Join(c.bases, ", ") }

func (c *Client) do(ctx context.Context, method, path, ctype string, body []byte, out any) error {
	rctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.send(rctx, method, path, ctype, body)
	if err != nil {
		return c.noAnswer(ctx, rctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return c.noAnswer(ctx, rctx, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerErr(resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode the controller's answer: %w", err)
		}
	}
	return nil
}

// noAnswer is the error of a request that got no (whole) answer: rctx is
// the request's context, ctx the caller's. When the client's own timeout
// ran out, it says so in one sentence.
func (c *Client) noAnswer(ctx, rctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return &apiError{kind: ErrUnreachable, msg: fmt.Sprintf("the controller at %s did not answer within %v", c.base(), c.timeout)}
	}
	return fmt.Errorf("%w at %s: %v", ErrUnreachable, c.base(), err)
}

// answerErr is the error of a non-2xx answer: the controller's message,
// classified by the status code's sentinel.
func answerErr(code int, body []byte) error {
	var e wire.ErrorResponse
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &apiError{kind: statusErr(code), msg: msg, problems: e.Problems}
}

// apiError is a message classified by a sentinel for errors.Is: mostly the
// controller's own words, with the status code's sentinel.
type apiError struct {
	kind     error
	msg      string
	problems []wire.Problem
	file     string // the lab file the problems are in, when they are in one
}

// Error gives the problems one to a line, from the controller's list
// rather than its text, so that they read so whatever its version joins
// them with.
func (e *apiError) Error() string {
	if len(e.problems) == 0 {
		return e.msg
	}
	if e.file != "" {
		return wire.FormatProblems("invalid lab", e.file, e.problems)
	}
	return wire.FormatProblems("invalid request", "", e.problems)
}

func (e *apiError) Unwrap() error { return e.kind }

// Problems lists what the controller found wrong with a request, each lab
// file problem with its line and column; nil when err is no such answer.
func Problems(err error) []wire.Problem {
	if e, ok := errors.AsType[*apiError](err); ok {
		return e.problems
	}
	return nil
}

func statusErr(code int) error {
	switch code {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusBadRequest:
		return ErrInvalid
	}
	return fmt.Errorf("status %d", code)
}

// Apply sends a lab file; with plan it only says what would change. The
// controller deploys after it answers: WaitLab follows the deploy. A lab
// the controller rejects is an ErrInvalid whose text names file at each
// problem.
func (c *Client) Apply(ctx context.Context, file string, data []byte, files map[string][]byte, plan bool) (wire.ApplyResponse, error) {
	resp, err := c.apply(ctx, file, data, files, plan)
	if e, ok := errors.AsType[*apiError](err); ok {
		e.file = file
	}
	return resp, err
}

func (c *Client) apply(ctx context.Context, file string, data []byte, files map[string][]byte, plan bool) (wire.ApplyResponse, error) {
	q := url.Values{"file": {file}}
	if plan {
		q.Set("plan", "true")
	}
	var resp wire.ApplyResponse
	if len(files) == 0 {
		return resp, c.do(ctx, http.MethodPost, "/labs/apply?"+q.Encode(), "application/yaml", data, &resp)
	}
	// The lab file and the files it names, in one request.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	parts := []struct{ name, file string }{{"lab", file}}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		parts = append(parts, struct{ name, file string }{"file", p})
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": p.name, "filename": p.file}))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			return resp, err
		}
		content := data
		if p.name == "file" {
			content = files[p.file]
		}
		if _, err := w.Write(content); err != nil {
			return resp, err
		}
	}
	if err := mw.Close(); err != nil {
		return resp, err
	}
	return resp, c.do(ctx, http.MethodPost, "/labs/apply?"+q.Encode(), mw.FormDataContentType(), body.Bytes(), &resp)
}

// WaitLab polls a lab every interval until it is no longer starting, and
// calls progress with each view it reads.
func (c *Client) WaitLab(ctx context.Context, lab string, every time.Duration, progress func(wire.LabView)) (wire.LabView, error) {
	for {
		v, err := c.Lab(ctx, lab)
		if err != nil {
			return v, err
		}
		progress(v)
		if v.State != "starting" {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("wait for lab %s: %w", lab, ctx.Err())
		case <-time.After(every):
		}
	}
}

// Destroy tears a lab down.
func (c *Client) Destroy(ctx context.Context, lab string) (wire.DeployResponse, error) {
	var resp wire.DeployResponse
	return resp, c.do(ctx, http.MethodPost, "/labs/"+url.PathEscape(lab)+"/destroy", "", nil, &resp)
}

// Delete removes a stopped lab.
func (c *Client) Delete(ctx context.Context, lab string) error {
	return c.do(ctx, http.MethodDelete, "/labs/"+url.PathEscape(lab), "", nil, nil)
}

// Labs lists the labs.
func (c *Client) Labs(ctx context.Context) ([]wire.Lab, error) {
	var labs []wire.Lab
	return labs, c.do(ctx, http.MethodGet, "/labs", "", nil, &labs)
}

// Lab returns a lab with its nodes and links.
func (c *Client) Lab(ctx context.Context, lab string) (wire.LabView, error) {
	var v wire.LabView
	return v, c.do(ctx, http.MethodGet, "/labs/"+url.PathEscape(lab), "", nil, &v)
}

// Links lists a lab's links.
func (c *Client) Links(ctx context.Context, lab string) ([]wire.LinkState, error) {
	var links []wire.LinkState
	return links, c.do(ctx, http.MethodGet, "/labs/"+url.PathEscape(lab)+"/links", "", nil, &links)
}

// Hosts lists the hosts.
func (c *Client) Hosts(ctx context.Context) ([]wire.HostView, error) {
	var hosts []wire.HostView
	return hosts, c.do(ctx, http.MethodGet, "/hosts", "", nil, &hosts)
}

// RemoveHost forgets a host; force unplaces the nodes labs have on it.
func (c *Client) RemoveHost(ctx context.Context, name string, force bool) (wire.HostRemoved, error) {
	var out wire.HostRemoved
	return out, c.do(ctx, http.MethodDelete, "/hosts/"+url.PathEscape(name)+"?"+url.Values{"force": {fmt.Sprint(force)}}.Encode(), "", nil, &out)
}

// Unbind lets the next agent that registers a host's name take it.
func (c *Client) Unbind(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/hosts/"+url.PathEscape(name)+"/unbind", "", nil, nil)
}

// Controllers lists the controllers on the database, the leader marked.
func (c *Client) Controllers(ctx context.Context) ([]wire.ControllerView, error) {
	var out []wire.ControllerView
	return out, c.do(ctx, http.MethodGet, "/controllers", "", nil, &out)
}

// Converge runs convergence now, for one lab's hosts when lab is set.
func (c *Client) Converge(ctx context.Context, lab string) (wire.ConvergeResponse, error) {
	var resp wire.ConvergeResponse
	return resp, c.do(ctx, http.MethodPost, "/converge?"+url.Values{"lab": {lab}}.Encode(), "", nil, &resp)
}

// ConvergePlan says what convergence would declare to each agent.
func (c *Client) ConvergePlan(ctx context.Context, lab string) (wire.ConvergePlan, error) {
	var plan wire.ConvergePlan
	return plan, c.do(ctx, http.MethodPost, "/converge?"+url.Values{"lab": {lab}, "plan": {"true"}}.Encode(), "", nil, &plan)
}

// Exec runs argv in a node of a lab, calling out with each frame of output
// as it arrives, and returns the command's exit code. The client's timeout,
// if any, bounds the whole command; ctx ending ends it.
func (c *Client) Exec(ctx context.Context, lab, node string, argv []string, out func(wire.ExecFrame) error) (int, error) {
	body, err := json.Marshal(wire.ExecRequest{Argv: argv})
	if err != nil {
		return -1, err
	}
	rctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	path := "/labs/" + url.PathEscape(lab) + "/nodes/" + url.PathEscape(node) + "/exec"
	resp, err := c.send(rctx, http.MethodPost, path, "application/json", body)
	if err != nil {
		return -1, c.noAnswer(ctx, rctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return -1, answerErr(resp.StatusCode, data)
	}
	code, err := wire.ReadExecFrames(resp.Body, out)
	if err != nil && rctx.Err() != nil {
		return -1, c.noAnswer(ctx, rctx, err)
	}
	return code, err
}
