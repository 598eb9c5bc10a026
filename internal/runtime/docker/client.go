package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// apiVersion is the Engine API this client speaks: Debian's docker.io 20.10
// serves it, and later daemons still do.
const apiVersion = "/v1.41"

// ErrNoContainer is a container the daemon does not know.
var ErrNoContainer = errors.New("no such container")

// Client is a small Docker Engine API client over the daemon's unix socket:
// the calls a node runtime makes, and nothing else.
type Client struct {
	http *http.Client
}

// NewClient returns a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{http: &http.Client{Transport: tr}}
}

// do sends one request and decodes a 2xx answer into out; a 404 is
// ErrNoContainer.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send sends one request and returns a 2xx or 304 answer, whose body the
// caller closes.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+apiVersion+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified {
		return resp, nil // 304: already in the state asked for (start, stop)
	}
	defer resp.Body.Close()
	var e struct{ Message string }
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %s", ErrNoContainer, e.Message)
	}
	return nil, fmt.Errorf("docker %s %s: %d: %s", method, path, resp.StatusCode, e.Message)
}

// Ping reports whether the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.send(ctx, http.MethodGet, "/_ping", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Container is what the runtime reads of a container.
type Container struct {
	ID     string
	Name   string
	Labels map[string]string
	// Running and Pid are the state; SandboxKey is the path of its network
	// namespace while it runs.
	Running    bool
	Pid        int
	SandboxKey string
}

// Inspect reads a container by name or id.
func (c *Client) Inspect(ctx context.Context, name string) (Container, error) {
	var r struct {
		ID     string `json:"Id"`
		Name   string
		Config struct{ Labels map[string]string }
		State  struct {
			Running bool
			Pid     int
		}
		NetworkSettings struct{ SandboxKey string }
	}
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(name)+"/json", nil, &r); err != nil {
		return Container{}, err
	}
	return Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Labels: r.Config.Labels, Running: r.State.Running,
		Pid: r.State.Pid, SandboxKey: r.NetworkSettings.SandboxKey}, nil
}

// List lists the containers, running or not, that carry label (key=value;
// "" for every container).
func (c *Client) List(ctx context.Context, label string) ([]Container, error) {
	filters, _ := json.Marshal(map[string][]string{})
	if label != "" {
		filters, _ = json.Marshal(map[string][]string{"label": {label}})
	}
	var rs []struct {
		ID     string `json:"Id"`
		Names  []string
		Labels map[string]string
		State  string
	}
	if err := c.do(ctx, http.MethodGet, "/containers/json?all=1&filters="+url.QueryEscape(string(filters)), nil, &rs); err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(rs))
	for _, r := range rs {
		name := ""
		if len(r.Names) > 0 {
			name = strings.TrimPrefix(r.Names[0], "/")
		}
		out = append(out, Container{ID: r.ID, Name: name, Labels: r.Labels, Running: r.State == "running"})
	}
	return out, nil
}

// CreateRequest is the part of a container's configuration netloom sets.
type CreateRequest struct {
	Image      string
	Hostname   string
	Labels     map[string]string
	Cmd        []string `json:",omitempty"`
	Entrypoint []string `json:",omitempty"`
	Env        []string `json:",omitempty"`
	User       string   `json:",omitempty"`
	HostConfig HostConfig
}

// HostConfig is the part of a container's host configuration netloom sets.
type HostConfig struct {
	NetworkMode   string
	CapAdd        []string
	RestartPolicy struct{ Name string }
	Binds         []string          `json:",omitempty"`
	Sysctls       map[string]string `json:",omitempty"`
	Memory        int64             `json:",omitempty"`
	NanoCPUs      int64             `json:"NanoCpus,omitempty"`
}

// Create makes a container and returns its id.
func (c *Client) Create(ctx context.Context, name string, req CreateRequest) (string, error) {
	var r struct {
		ID string `json:"Id"`
	}
	err := c.do(ctx, http.MethodPost, "/containers/create?name="+url.QueryEscape(name), req, &r)
	return r.ID, err
}

// Start starts a container; one that runs already is not an error (the
// daemon answers 304), as when a docker restart started it first.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil)
}

// Remove removes a container, running or not, with its anonymous volumes;
// its processes are killed.
func (c *Client) Remove(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id)+"?force=1&v=1", nil, nil)
	if errors.Is(err, ErrNoContainer) {
		return nil
	}
	return err
}

// Exec runs cmd in a running container and returns its output (stdout and
// stderr, in order) and exit code.
func (c *Client) Exec(ctx context.Context, id string, cmd []string) (string, int, error) {
	var out strings.Builder
	code, err := c.ExecStream(ctx, id, cmd, &out, &out)
	return out.String(), code, err
}

// ExecStream runs cmd in a running container, writing its stdout and stderr
// to the writers as the daemon sends them, and returns its exit code.
func (c *Client) ExecStream(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	var created struct {
		ID string `json:"Id"`
	}
	err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/exec",
		map[string]any{"AttachStdout": true, "AttachStderr": true, "Cmd": cmd}, &created)
	if err != nil {
		return -1, err
	}
	resp, err := c.send(ctx, http.MethodPost, "/exec/"+created.ID+"/start", map[string]bool{"Detach": false, "Tty": false})
	if err != nil {
		return -1, err
	}
	err = demux(resp.Body, stdout, stderr)
	resp.Body.Close()
	if err != nil {
		return -1, fmt.Errorf("docker exec: %w", err)
	}
	var st struct{ ExitCode int }
	if err := c.do(ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, &st); err != nil {
		return -1, err
	}
	return st.ExitCode, nil
}

// demux copies the daemon's multiplexed stream of a command without a
// terminal to stdout and stderr, frame by frame: frames of an 8-byte header
// (stream: 1 stdout, 2 stderr; 3 zero bytes; big-endian length) and the
// payload.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			return err
		}
	}
}
