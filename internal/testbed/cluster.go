package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Addresses of a cluster's machines on the underlay.
const (
	ControllerAddr = "10.77.0.100"
	ControllerURL  = "http://" + ControllerAddr + ":7400"
	// SecondControllerURL is where StartSecondController's controller
	// serves, on the same machine and database.
	SecondControllerURL = "http://" + ControllerAddr + ":7410"
)

// ClusterConfig says what a cluster runs.
type ClusterConfig struct {
	// Bin is the netloom binary, built by BuildNetloom.
	Bin string
	// Hosts names the simulated hosts; the n-th gets 10.77.0.<n+1>.
	Hosts []string
	// Postgres runs the controller on a throwaway PostgreSQL, else SQLite.
	Postgres bool
	// ControllerArgs are added to the controller's command line, AgentArgs
	// to every agent's.
	ControllerArgs []string
	AgentArgs      []string
	// DockerHosts get a private Docker daemon each, with the test images
	// (scripts/images.sh), which their agents run nodes with an image on.
	DockerHosts []string
	// Images are loaded into each Docker daemon, as scripts/images.sh takes
	// them (IMAGE or IMAGE=TAG); busybox when empty.
	Images []string
	// OVSTunnels makes hosts that carry their underlay on an OVS bridge
	// (HostOptions.UnderlayOnOVS), and agents that run with
	// --tunnel-ports ovs.
	OVSTunnels bool
}

// Cluster is a controller on its own machine and an agent on each host, all
// netloom processes, joined by the underlay.
type Cluster struct {
	Bed        *Bed
	Ctl        *Host
	Hosts      map[string]*Host
	Agents     map[string]*Process
	Controller *Process
	// Second is the second controller, once StartSecondController ran.
	Second *Process
	// Dockers are the hosts' Docker daemons, by host.
	Dockers map[string]*Docker
	// Postgres is the controllers' database server, with Postgres set;
	// each controller reaches it through its own relay, by its URL.
	Postgres *Postgres
	Relays   map[string]*Relay
	// HTTP dials from the controller's machine, so it reaches every part.
	HTTP       *http.Client
	AgentToken string
	APIToken   string

	cfg            ClusterConfig
	agentTokenFile string
	apiTokenFile   string
	dsn            string
}

// StartCluster builds a bed with the cluster and waits until every agent is
// registered. The bed goes when the test ends.
func StartCluster(t TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	ctx := t.Context()
	bed := Start(t)
	c := &Cluster{Bed: bed, Hosts: map[string]*Host{}, Agents: map[string]*Process{}, Dockers: map[string]*Docker{}, Relays: map[string]*Relay{}, cfg: cfg,
		AgentToken: "agent-token-" + bed.ID(), APIToken: "api-token-" + bed.ID()}
	var err error
	if c.Ctl, err = bed.AddMachine(ctx, "ctl", netip.MustParsePrefix(ControllerAddr+"/24")); err != nil {
		t.Fatalf("controller machine: %v", err)
	}
	c.HTTP = c.Ctl.HTTPClient()
	for i, name := range cfg.Hosts {
		addr := netip.MustParsePrefix(fmt.Sprintf("10.77.0.%d/24", i+1))
		if c.Hosts[name], err = bed.AddHostWith(ctx, name, addr, HostOptions{UnderlayOnOVS: cfg.OVSTunnels}); err != nil {
			t.Fatalf("host %s: %v", name, err)
		}
	}
	for _, name := range cfg.DockerHosts {
		dk, err := bed.StartDocker(ctx, name)
		if err != nil {
			t.Fatalf("docker of %s: %v", name, err)
		}
		images := cfg.Images
		if len(images) == 0 {
			images = []string{"busybox"}
		}
		if err := dk.LoadImages(ctx, images...); err != nil {
			t.Fatalf("docker of %s: %v", name, err)
		}
		c.Dockers[name] = dk
	}
	c.agentTokenFile = filepath.Join(c.Ctl.Dir, "agent-token")
	c.apiTokenFile = filepath.Join(c.Ctl.Dir, "api-token")
	for file, tok := range map[string]string{c.agentTokenFile: c.AgentToken, c.apiTokenFile: c.APIToken} {
		if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
			t.Fatalf("token: %v", err)
		}
	}
	c.dsn = "sqlite://" + filepath.Join(c.Ctl.Dir, "db", "netloom.db")
	if cfg.Postgres {
		if c.Postgres, err = bed.StartPostgres(ctx); err != nil {
			t.Fatalf("postgres: %v", err)
		}
		if c.dsn, err = c.Postgres.CreateDatabase(ctx, "netloom"); err != nil {
			t.Fatalf("postgres: %v", err)
		}
		for _, url := range []string{ControllerURL, SecondControllerURL} {
			r, err := c.Postgres.Relay(url[strings.LastIndex(url, ":")+1:])
			if err != nil {
				t.Fatalf("postgres: %v", err)
			}
			t.Cleanup(r.Cut)
			c.Relays[url] = r
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if c.Controller != nil {
			t.Logf("controller output:\n%s", lastBytes(c.Controller.Output()))
		}
		if c.Second != nil {
			t.Logf("second controller output:\n%s", lastBytes(c.Second.Output()))
		}
		for name, p := range c.Agents {
			t.Logf("agent %s output:\n%s", name, lastBytes(p.Output()))
		}
	})
	c.StartController(t)
	for _, name := range cfg.Hosts {
		c.StartAgent(t, name)
	}
	c.WaitHosts(t, len(cfg.Hosts))
	return c
}

func lastBytes(s string) string { return s[max(0, len(s)-3000):] }

// StartController starts (or restarts) the controller process.
func (c *Cluster) StartController(t TB) {
	t.Helper()
	c.Controller = c.startController(t, ControllerURL)
}

// StartSecondController starts (or restarts) a second controller on the
// same database, at SecondControllerURL: with PostgreSQL the two share it,
// one leading.
func (c *Cluster) StartSecondController(t TB) {
	t.Helper()
	c.Second = c.startController(t, SecondControllerURL)
}

// startController starts a controller serving at url, and waits until it
// answers.
func (c *Cluster) startController(t TB, url string) *Process {
	t.Helper()
	dsn := c.dsn
	if r, ok := c.Relays[url]; ok {
		dsn = r.DSN("netloom")
	}
	args := append([]string{"controller", "--listen", strings.TrimPrefix(url, "http://"), "--db", dsn,
		"--agent-token-file", c.agentTokenFile, "--api-token-file", c.apiTokenFile, "--agent-timeout", "10s"}, c.cfg.ControllerArgs...)
	p, err := c.Ctl.Start(t.Context(), c.cfg.Bin, args...)
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	c.wait(t, "controller", 30*time.Second, p, func() bool {
		return c.CallAt(t, url, c.APIToken, "GET", "/healthz", "", nil, nil) == http.StatusOK
	})
	return p
}

// StartAgent starts (or restarts) a host's agent.
func (c *Cluster) StartAgent(t TB, name string) {
	t.Helper()
	h := c.Hosts[name]
	ip := h.Underlay.Addr().String()
	args := []string{"agent", "--listen", ip + ":7401", "--name", name, "--data-ip", ip,
		"--controller", ControllerURL, "--state-dir", filepath.Join(h.Dir, "agent"), "--ovsdb", h.OVSDB(),
		"--token-file", c.agentTokenFile, "--docker-socket", c.dockerSocket(name)}
	if c.cfg.OVSTunnels {
		args = append(args, "--tunnel-ports", "ovs")
	}
	// AgentArgs come last: the last of a repeated flag wins.
	p, err := h.Start(t.Context(), c.cfg.Bin, append(args, c.cfg.AgentArgs...)...)
	if err != nil {
		t.Fatalf("agent %s: %v", name, err)
	}
	c.Agents[name] = p
}

// dockerSocket is the socket of a host's Docker daemon; "" (none) for a
// host without one, never the machine's own daemon.
func (c *Cluster) dockerSocket(host string) string {
	if dk, ok := c.Dockers[host]; ok {
		return dk.Socket
	}
	return ""
}

// WaitAgent waits until a host's agent serves and has restored its state.
func (c *Cluster) WaitAgent(t TB, name string) {
	t.Helper()
	url := "http://" + c.Hosts[name].Underlay.Addr().String() + ":7401/healthz"
	c.wait(t, "agent "+name, 30*time.Second, c.Agents[name], func() bool {
		var health struct{ Ready bool }
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&health) == nil && health.Ready
	})
}

// WaitHosts waits until n hosts are online at the controller.
func (c *Cluster) WaitHosts(t TB, n int) {
	t.Helper()
	c.wait(t, fmt.Sprintf("%d hosts online", n), 30*time.Second, c.Controller, func() bool {
		var hosts []struct{ Status string }
		if c.Call(t, "GET", "/api/v1/hosts", "", nil, &hosts) != http.StatusOK {
			return false
		}
		online := 0
		for _, h := range hosts {
			if h.Status == "online" {
				online++
			}
		}
		return online >= n
	})
}

// wait polls cond until it holds, the process p dies, or timeout passes.
func (c *Cluster) wait(t TB, what string, timeout time.Duration, p *Process, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := p.Exited(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Call sends a request to the controller with the API token and decodes
// the answer into out; it returns the status code, 0 when nothing answered.
func (c *Cluster) Call(t TB, method, path, contentType string, body []byte, out any) int {
	t.Helper()
	return c.CallAs(t, c.APIToken, method, path, contentType, body, out)
}

// CallAs is Call with another token: the agent token, to play an agent.
func (c *Cluster) CallAs(t TB, token, method, path, contentType string, body []byte, out any) int {
	t.Helper()
	return c.CallAt(t, ControllerURL, token, method, path, contentType, body, out)
}

// CallAt is CallAs to the controller at url (SecondControllerURL).
func (c *Cluster) CallAt(t TB, url, token, method, path, contentType string, body []byte, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(data, out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// CLI runs the netloom CLI on the controller's machine, as a user there.
func (c *Cluster) CLI(t TB, args ...string) (string, error) {
	t.Helper()
	return ExecIn(t.Context(), c.Ctl.Netns, c.cfg.Bin, c.cliArgs(args)...)
}

// RunCLI is CLI with stdout and stderr apart, and the exit code.
func (c *Cluster) RunCLI(t TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	full := append([]string{"netns", "exec", c.Ctl.Netns, c.cfg.Bin}, c.cliArgs(args)...)
	cmd := exec.CommandContext(t.Context(), "ip", full...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("netloom %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
}

// cliArgs adds the controller's address and token to args, before a "--"
// that ends netloom's own flags (as exec's does).
func (c *Cluster) cliArgs(args []string) []string {
	conn := []string{"--controller", ControllerURL, "--token-file", c.apiTokenFile}
	i := slices.Index(args, "--")
	if i < 0 {
		i = len(args)
	}
	return slices.Concat(args[:i], conn, args[i:])
}

// Credential returns the host credential a host's agent holds, for a test
// that calls the agent as the controller does.
func (c *Cluster) Credential(t TB, host string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.Hosts[host].Dir, "agent", "credential"))
	if err != nil {
		t.Fatalf("credential of %s: %v", host, err)
	}
	return strings.TrimSpace(string(data))
}
