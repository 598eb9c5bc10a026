// Command run measures every performance target of DESIGN §10, each beside
// its baseline in the same run, prints a table and writes bench/results.md.
// Run it as root from the repository root: go run ./bench/run [-n 5].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/testbed"
)

func main() {
	n := flag.Int("n", 5, "repetitions of each scenario")
	out := flag.String("o", "bench/results.md", "where to write the results")
	only := flag.String("only", "", "run one group of scenarios: agent, large (10 000 tunnels), controller, lab, containers or load")
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
		{"large", func() ([]row, error) { return largeScenario(ctx, bin) }},
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
	report := render(rows, n, previous(outPath))
	fmt.Print(report)
	return os.WriteFile(outPath, []byte(report), 0o644)
}

// previous reads the netloom column of the results file about to be
// replaced, by scenario, so each row shows what it measured last time; a
// missing or unreadable file gives none.
func previous(path string) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) >= 3 && strings.HasPrefix(cells[0], "| ") {
			out[strings.TrimPrefix(cells[0], "| ")] = cells[2]
		}
	}
	return out
}

func render(rows []row, n int, prev map[string]string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmarks (DESIGN §10)\n\nMeasured by `go run ./bench/run -n %d` on %s, %s, %d CPUs, %s, %s.\n"+
		"Each row is the median of %d runs on fresh simulated hosts, with the spread (min–max); the baseline runs in the same loop.\n\n",
		n, time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runtime.Version(), n)
	b.WriteString("The previous column is this row's netloom figure in the results file this run replaced (- for a new scenario).\n\n")
	b.WriteString("| scenario | target | netloom | baseline | ratio | met | previous |\n|---|---|---|---|---|---|---|\n")
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
		was, ok := prev[r.scenario]
		if !ok {
			was = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.scenario, r.target, got, base, ratio, met, was)
	}
	return b.String()
}
