package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/bench"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// Load of the read scenario: loadRate requests a second for loadFor, each
// given loadTimeout to answer.
const (
	loadRate    = 200
	loadFor     = 20 * time.Second
	loadTimeout = 10 * time.Second
	loadPool    = 8 // --db-max-conns
)

// loadScenario deploys a 1000-node chain lab over two hosts with a real
// controller process, then reads the API at loadRate for loadFor, mixed:
// the lab list, the big lab, its links and the hosts. It reports latency,
// timeouts, the controller's RSS before and after, and the most database
// connections it held open.
func loadScenario(ctx context.Context, bin string) ([]row, error) {
	r := row{scenario: fmt.Sprintf("mixed API reads at %d req/s for %v (labs, a 1000-node lab, its links, hosts), real controller", loadRate, loadFor),
		target: fmt.Sprintf("no timeout (%v); RSS bounded; DB connections ≤ pool (%d)", loadTimeout, loadPool)}
	err := runTB(ctx, "bench-load", func(t *benchTB) {
		c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: bin, Hosts: []string{"hostA", "hostB"},
			ControllerArgs: []string{"--declare-timeout", "5m", "--db-max-conns", fmt.Sprint(loadPool)},
			AgentArgs:      []string{"--underlay-interval", "1s"}})
		chain := bench.Chain{Name: c.Bed.ID(), Nodes: 1000, HostOf: twoHosts}
		file := filepath.Join(c.Ctl.Dir, "lab.yaml")
		if err := os.WriteFile(file, chain.File(), 0o644); err != nil {
			t.Fatalf("lab file: %v", err)
		}
		// The agents check the underlay once they hold tunnels: a check that
		// ran before its peer listened fails the cross-host links until the
		// next one passes and the controller's round after it.
		_, _ = c.CLI(t, "lab", "apply", "-f", file, "--timeout", "20m")
		running(t, c, chain.Name)
		defer func() {
			if out, err := c.CLI(t, "lab", "destroy", chain.Name, "--timeout", "20m"); err != nil {
				t.Errorf("destroy: %v\n%s", err, out)
			}
		}()
		pid := c.Controller.PID()
		db := filepath.Join(c.Ctl.Dir, "db", "netloom.db")
		before := rssMB(pid)
		stop := make(chan struct{})
		maxConns := make(chan int, 1)
		go func() { maxConns <- watchConns(pid, db, stop) }()

		paths := []string{"/api/v1/labs", "/api/v1/labs/" + chain.Name, "/api/v1/labs/" + chain.Name + "/links", "/api/v1/hosts"}
		n := int(loadFor.Seconds()) * loadRate
		lat := make([]time.Duration, n)
		codes := make([]int, n)
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / loadRate)
		for i := range n {
			<-tick.C
			wg.Go(func() { lat[i], codes[i] = read(t.Context(), c, paths[i%len(paths)]) })
		}
		tick.Stop()
		wg.Wait()
		close(stop)
		after := rssMB(pid)
		conns := <-maxConns

		timeouts, busy, failed := 0, 0, 0
		for _, code := range codes {
			switch {
			case code == 0:
				timeouts++
			case code == http.StatusServiceUnavailable:
				busy++
			case code != http.StatusOK:
				failed++
			}
		}
		slices.Sort(lat)
		r.samples = lat
		r.figure = fmt.Sprintf("%d requests: p50 %v, p99 %v, max %v; %d timed out, %d turned away (503), %d failed; RSS %.0f → %.0f MB; at most %d DB connections",
			n, lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond), lat[n-1].Round(time.Millisecond),
			timeouts, busy, failed, before, after, conns)
		r.ok = timeouts == 0 && failed == 0 && conns <= loadPool && after < 4*max(before, 50)
	})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return []row{r}, nil
}

// running waits until a lab runs.
func running(t *benchTB, c *testbed.Cluster, lab string) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var l wire.Lab
		c.Call(t, "GET", "/api/v1/labs/"+lab, "", nil, &l)
		if l.State == "running" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab %s is %s: %s", lab, l.State, l.StateError)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// read sends one API read and returns how long it took and its status, 0
// when no answer came within loadTimeout.
func read(ctx context.Context, c *testbed.Cluster, path string) (time.Duration, int) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, "GET", testbed.ControllerURL+path, nil)
	if err != nil {
		return 0, 0
	}
	req.Header.Set("Authorization", "Bearer "+c.APIToken)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return time.Since(start), 0
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return time.Since(start), 0
	}
	return time.Since(start), resp.StatusCode
}

// watchConns samples, until stop, the descriptors process pid holds open
// on the database file db, and returns the most it saw.
func watchConns(pid int, db string, stop <-chan struct{}) int {
	most := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		entries, _ := os.ReadDir(dir)
		n := 0
		for _, e := range entries {
			if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasSuffix(target, db) {
				n++
			}
		}
		most = max(most, n)
		select {
		case <-stop:
			return most
		case <-tick.C:
		}
	}
}
