// Command run measures every performance target of DESIGN §10, each beside
// its baseline in the same run, prints a table and writes bench/results.md.
// Run it as root from the repository root: go run ./bench/run [-n 5].
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/controller"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
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
		{"controller", func() ([]row, error) { return controllerScenario(ctx) }},
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

// controllerScenario times one reconcile cycle over 100 hosts and 10 000
// cross-host links with fake agents, and counts its statements at 1 000 and
// 10 000 links.
func controllerScenario(ctx context.Context) ([]row, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	queries := map[int]int64{}
	var cycle row
	for _, links := range []int{1000, 10000} {
		dir, err := os.MkdirTemp("", "netloom-bench-db")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "c.db"), log)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		c, err := controller.New(controller.Config{Listen: ":0", AgentToken: "a", APIToken: "b", AgentTimeout: 10 * time.Second, DeclareTimeout: time.Minute, MaxRequests: 64,
			OfflineAfter: time.Hour, ReconcileInterval: time.Hour, ConvergeEvery: 1, MaxLabNodes: 5000, MaxLabLinks: 20000, Lease: 10 * time.Second}, st, log)
		if err != nil {
			return nil, err
		}
		srv := httptest.NewServer(&agenttest.Converged{})
		defer srv.Close()
		for h := range 100 {
			if _, err := st.RegisterHost(ctx, store.Host{Name: fmt.Sprintf("h%d", h), Address: srv.URL, DataIP: fmt.Sprintf("10.1.%d.%d", h/250, h%250+1)}); err != nil {
				return nil, err
			}
		}
		lab := topology.Lab{Name: fmt.Sprintf("big%d", links)}
		placement := map[string]string{}
		for i := range links {
			a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
			lab.Nodes = append(lab.Nodes, topology.Node{Name: a, Kind: "linux"}, topology.Node{Name: b, Kind: "linux"})
			lab.Links = append(lab.Links, topology.Link{A: topology.Endpoint{Node: a, Iface: "eth1"}, B: topology.Endpoint{Node: b, Iface: "eth1"}})
			placement[a], placement[b] = fmt.Sprintf("h%d", i%100), fmt.Sprintf("h%d", (i+1)%100)
		}
		if _, err := st.CreateLab(ctx, lab); err != nil {
			return nil, err
		}
		if err := st.SetPlacements(ctx, lab.Name, placement); err != nil {
			return nil, err
		}
		if err := st.SetLabState(ctx, lab.Name, store.LabRunning, ""); err != nil {
			return nil, err
		}
		c.RunCycle(ctx, 1) // warm: tags, VNIs and tunnel rows allocated, states recorded
		before := st.Queries()
		var samples []time.Duration
		for range 5 {
			start := time.Now()
			c.RunCycle(ctx, 1)
			samples = append(samples, time.Since(start))
		}
		queries[links] = (st.Queries() - before) / 5
		if links == 10000 {
			cycle = row{scenario: "one controller cycle, 100 hosts × 10 000 links (agents faked)", target: "≤ 1 s", samples: samples,
				ok: median(samples) <= time.Second}
		}
	}
	q := row{scenario: "database statements per cycle", target: "independent of link count",
		figure: fmt.Sprintf("%d at 1 000 links, %d at 10 000", queries[1000], queries[10000]), ok: queries[1000] == queries[10000]}
	return []row{cycle, q}, nil
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
