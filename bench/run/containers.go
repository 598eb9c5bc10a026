package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/netloom/netloom/bench"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// image is the container image of the container scenarios.
const image = "netloom/busybox:latest"

// containerScenario measures a lab of 20 container nodes over 2 hosts
// through the CLI, beside `docker run --network none` of the same 20
// containers in the same loop, 10 on each host's daemon, hosts at once.
func containerScenario(ctx context.Context, bin string, n int) ([]row, error) {
	r := row{scenario: "lab apply, 20 container nodes / 19 links over 2 hosts (10 cross-host), all up, traffic in a sample",
		target: "≤ 1.5 × baseline"}
	hosts := []string{"hostA", "hostB"}
	for range n {
		err := runTB(ctx, "bench-containers", func(t *benchTB) {
			c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: bin, Hosts: hosts, DockerHosts: hosts})
			chain := bench.Chain{Name: c.Bed.ID(), Nodes: 20, HostOf: twoHosts, Image: image}
			file := filepath.Join(c.Ctl.Dir, "lab.yaml")
			if err := os.WriteFile(file, chain.File(), 0o644); err != nil {
				t.Fatalf("lab file: %v", err)
			}
			start := time.Now()
			if out, err := c.CLI(t, "lab", "apply", "-f", file); err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			r.samples = append(r.samples, time.Since(start))
			// r0 (hostA) to r1 (hostB): the first link, across the hosts.
			if out, err := c.Dockers[twoHosts(0)].CLI(t.Context(), "exec", ident.NamespaceName(chain.Name, "r0"),
				"ping", "-c", "2", "-W", "1", bench.Addr(0, 2)); err != nil {
				t.Fatalf("ping over link 0: %v\n%s", err, out)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("containers: %w", err)
		}
		err = runTB(ctx, "bench-containers-baseline", func(t *benchTB) {
			bed := testbed.Start(t)
			dockers := map[string]*testbed.Docker{}
			for _, h := range hosts {
				dk, err := bed.StartDocker(t.Context(), h)
				if err != nil {
					t.Fatalf("docker: %v", err)
				}
				if err := dk.LoadImages(t.Context(), "busybox"); err != nil {
					t.Fatalf("images: %v", err)
				}
				dockers[h] = dk
			}
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for _, h := range hosts {
				wg.Go(func() {
					for i := range 20 {
						if twoHosts(i) != h {
							continue
						}
						if out, err := dockers[h].CLI(t.Context(), "run", "-d", "--network", "none", "--cap-add", "NET_ADMIN",
							"--name", fmt.Sprintf("r%d", i), image); err != nil {
							errs <- fmt.Errorf("docker run: %v: %s", err, out)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("%v", err)
			}
			r.baseline = append(r.baseline, time.Since(start))
		})
		if err != nil {
			return nil, fmt.Errorf("containers baseline: %w", err)
		}
	}
	r.ok = float64(median(r.samples)) <= 1.5*float64(median(r.baseline))
	return []row{r}, nil
}
