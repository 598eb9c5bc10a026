// Command run measures every performance target of DESIGN §10, each beside
// its baseline in the same run, prints a table and writes bench/results.md.
// Run it as root from the repository root: go run ./bench/run [-n 5].
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netloom/netloom/bench"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

func main() {
	n := flag.Int("n", 5, "repetitions of each scenario")
	out := flag.String("o", "bench/results.md", "where to write the results")
	only := flag.String("only", "", "run one group of scenarios: agent, controller, lab, containers or load")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *n, *out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// row is one line of the results.
type row struct {
	scenario, target string
	samples          []time.Duration // empty for figures that are not times
	baseline         []time.Duration
	figure           string // for non-time results
	ok               bool
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func spread(d []time.Duration) string {
	return fmt.Sprintf("%v–%v", slices.Min(d).Round(time.Millisecond), slices.Max(d).Round(time.Millisecond))
}

func run(ctx context.Context, n int, outPath, only string) error {
	bin, remove, err := testbed.BuildNetloom()
	if err != nil {
		return err
	}
	defer remove()
	groups := []struct {
		name string
		run  func() ([]row, error)
	}{
		{"agent", func() ([]row, error) { return agentScenarios(ctx, bin, n) }},
		{"controller", func() ([]row, error) { return controllerScenarios(ctx) }},
		{"lab", func() ([]row, error) { return labScenarios(ctx, bin, n) }},
		{"containers", func() ([]row, error) { return containerScenario(ctx, bin, n) }},
		{"load", func() ([]row, error) { return loadScenario(ctx, bin) }},
	}
	var rows []row
	for _, g := range groups {
		if only != "" && only != g.name {
			continue
		}
		got, err := g.run()
		rows = append(rows, got...)
		if err != nil {
			return fmt.Errorf("%s scenarios: %w", g.name, err)
		}
	}
	report := render(rows, n)
	fmt.Print(report)
	return os.WriteFile(outPath, []byte(report), 0o644)
}

const tunnelCount = 1000

// agentHost is one simulated host with a netloom agent process.
type agentHost struct {
	bed  *testbed.Bed
	host *testbed.Host
	proc *testbed.Process
	http *http.Client
	bin  string
}

// agentToken is the token the benchmark's agents take.
const agentToken = "bench-agent-token"

func newAgentHost(ctx context.Context, bin string) (*agentHost, error) {
	bed, h, err := bench.NewHost(ctx, "bench")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(h.Dir, "token"), []byte(agentToken), 0o600); err != nil {
		bed.Close()
		return nil, err
	}
	a := &agentHost{bed: bed, host: h, http: h.HTTPClient(), bin: bin}
	if err := a.start(ctx); err != nil {
		bed.Close()
		return nil, err
	}
	return a, nil
}

func (a *agentHost) start(ctx context.Context) error {
	p, err := a.host.Start(ctx, a.bin, "agent", "--listen", "127.0.0.1:7401", "--name", "hostA", "--data-ip", "10.77.0.1",
		"--state-dir", filepath.Join(a.host.Dir, "agent"), "--ovsdb", a.host.OVSDB(), "--token-file", filepath.Join(a.host.Dir, "token"))
	if err != nil {
		return err
	}
	a.proc = p
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var h struct{ Ready bool }
		if a.call(ctx, "GET", "/healthz", nil, &h) == nil && h.Ready {
			return nil
		}
		if err := p.Exited(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("agent not ready")
}

func (a *agentHost) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, _ := json.Marshal(in)
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://127.0.0.1:7401"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+agentToken)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *agentHost) nextCfg(ctx context.Context) string {
	out, _ := a.host.VSCtl(ctx, "get", "Open_vSwitch", ".", "next_cfg")
	return strings.TrimSpace(out)
}

func (a *agentHost) devices(ctx context.Context) map[string]int {
	out, _ := a.host.Exec(ctx, "ip", "-j", "link", "show", "type", "vxlan")
	var links []struct {
		Ifname  string
		Ifindex int
	}
	_ = json.Unmarshal([]byte(out), &links)
	m := map[string]int{}
	for _, l := range links {
		m[l.Ifname] = l.Ifindex
	}
	return m
}

func rssMB(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// agentScenarios measures, n times each on a fresh host: a 1000-tunnel
// declaration against its ip/ovs-vsctl baseline, the same declaration again
// (no-op), a repair after a port is deleted by hand, a restart with the
// controller down, and the agent's memory.
func agentScenarios(ctx context.Context, bin string, n int) ([]row, error) {
	ts := bench.Tunnels(tunnelCount)
	first := int64(1) // the same generation again: the no-op is a retry
	req := wire.DeclareStateRequest{Tunnels: ts, DeclaredLabs: []string{"bench"}, Generation: &first}
	declare := row{scenario: "declare 1000 new tunnels on an empty host (agent over HTTP)", target: "≤ 1.5 × baseline"}
	noop := row{scenario: "declare 1000 converged tunnels (no-op)", target: "≤ 50 ms, no writes", ok: true}
	repair := row{scenario: "port deleted by hand → repaired, no controller", target: "≤ 1 s"}
	restart := row{scenario: "agent restart with 1000 cached tunnels, controller down", target: "≤ 3 s, 0 devices recreated", ok: true}
	var rss []float64
	recreated := 0
	for i := range n {
		a, err := newAgentHost(ctx, bin)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer a.bed.Close()
			start := time.Now()
			var resp wire.DeclareStateResponse
			if err := a.call(ctx, "POST", "/overlay/declare-state", req, &resp); err != nil {
				return err
			}
			declare.samples = append(declare.samples, time.Since(start))
			for _, r := range resp.Results {
				if r.Status != wire.StatusCreated {
					return fmt.Errorf("result %+v", r)
				}
			}
			rss = append(rss, rssMB(a.proc.PID()))

			cfg := a.nextCfg(ctx)
			start = time.Now()
			if err := a.call(ctx, "POST", "/overlay/declare-state", req, &resp); err != nil {
				return err
			}
			noop.samples = append(noop.samples, time.Since(start))
			if a.nextCfg(ctx) != cfg {
				noop.ok = false
			}

			port := ts[i*7%len(ts)].PortName
			if _, err := a.host.VSCtl(ctx, "del-port", port); err != nil {
				return err
			}
			start = time.Now()
			for {
				if out, _ := a.host.VSCtl(ctx, "--bare", "--columns=tag", "find", "Port", "name="+port); strings.TrimSpace(out) != "" {
					break
				}
				if time.Since(start) > 10*time.Second {
					out, _ := a.host.VSCtl(ctx, "--bare", "--columns=name,tag", "find", "Port", "name="+port)
					return fmt.Errorf("no repair of %s (%q):\n%s", port, out, a.proc.Output()[max(0, len(a.proc.Output())-3000):])
				}
				time.Sleep(2 * time.Millisecond)
			}
			repair.samples = append(repair.samples, time.Since(start))

			before := a.devices(ctx)
			if err := a.proc.Kill(); err != nil {
				return err
			}
			start = time.Now()
			if err := a.start(ctx); err != nil {
				return err
			}
			restart.samples = append(restart.samples, time.Since(start))
			after := a.devices(ctx)
			for name, idx := range before {
				if after[name] != idx {
					recreated++
				}
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
		base, err := baseline(ctx, ts)
		if err != nil {
			return nil, err
		}
		declare.baseline = append(declare.baseline, base)
	}
	declare.ok = float64(median(declare.samples)) <= 1.5*float64(median(declare.baseline))
	noop.ok = noop.ok && median(noop.samples) <= 50*time.Millisecond
	repair.ok = median(repair.samples) <= time.Second
	restart.ok = median(restart.samples) <= 3*time.Second && recreated == 0
	restart.figure = fmt.Sprintf("%d devices recreated", recreated)
	slices.Sort(rss)
	mem := row{scenario: "agent RSS with 1000 tunnels", target: "≤ 60 MB", figure: fmt.Sprintf("%.1f MB median (%.1f–%.1f)", rss[len(rss)/2], rss[0], rss[len(rss)-1]), ok: rss[len(rss)/2] <= 60}
	return []row{declare, noop, repair, restart, mem}, nil
}

// baseline times the plain way on a fresh host of its own.
func baseline(ctx context.Context, ts []wire.DeclaredTunnel) (time.Duration, error) {
	bed, h, err := bench.NewHost(ctx, "baseline")
	if err != nil {
		return 0, err
	}
	defer bed.Close()
	return bench.Baseline(ctx, h, ts)
}

func render(rows []row, n int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmarks (DESIGN §10)\n\nMeasured by `go run ./bench/run -n %d` on %s, %s, %d CPUs, %s, %s.\n"+
		"Each row is the median of %d runs on fresh simulated hosts, with the spread (min–max); the baseline runs in the same loop.\n\n",
		n, time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runtime.Version(), n)
	b.WriteString("| scenario | target | netloom | baseline | ratio | met |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		got, base, ratio := r.figure, "-", "-"
		if len(r.samples) > 0 {
			got = fmt.Sprintf("%v (%s)", median(r.samples).Round(time.Millisecond), spread(r.samples))
			if r.figure != "" {
				got += "; " + r.figure
			}
		}
		if len(r.baseline) > 0 {
			base = fmt.Sprintf("%v (%s)", median(r.baseline).Round(time.Millisecond), spread(r.baseline))
			ratio = fmt.Sprintf("%.2f", float64(median(r.samples))/float64(median(r.baseline)))
		}
		met := "yes"
		if !r.ok {
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.scenario, r.target, got, base, ratio, met)
	}
	return b.String()
}
