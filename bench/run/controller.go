package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/controller"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
)

// cycleRuns is how many cycles each controller scenario times, after one
// that allocates; changeRuns how many it times right after a change.
const (
	cycleRuns  = 5
	changeRuns = 3
)

// deployment is the shape of a controller scenario: links cross-host links
// split evenly over labs, each lab spread over its own hostsPerLab hosts.
type deployment struct {
	hosts, labs, links int
}

// hostsPerLab is how many hosts a lab spans.
func (d deployment) hostsPerLab() int { return d.hosts / d.labs }

// controllerScenarios times one reconcile cycle with fake agents on SQLite
// (100 hosts × 10 000 links in one lab) and on PostgreSQL (1000 hosts ×
// 100 000 links in 100 labs of 10 hosts each), and counts each store's
// statements per cycle at 1 000 links and at the full size.
func controllerScenarios(ctx context.Context) ([]row, error) {
	dir, err := os.MkdirTemp("", "netloom-bench-db")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sq := map[int]cycles{}
	for _, links := range []int{1000, 10000} {
		dsn := "sqlite://" + filepath.Join(dir, fmt.Sprintf("c%d.db", links))
		got, err := controllerCycle(ctx, dsn, deployment{hosts: 100, labs: 1, links: links})
		if err != nil {
			return nil, fmt.Errorf("sqlite, %d links: %w", links, err)
		}
		sq[links] = got
	}
	sqlite := sq[10000].steady
	cycle := row{scenario: "one controller cycle, 100 hosts × 10 000 links (agents faked)", target: "≤ 1 s", samples: sqlite,
		ok: median(sqlite) <= time.Second}
	q := row{scenario: "database statements per cycle", target: "independent of link count",
		figure: fmt.Sprintf("%d at 1 000 links, %d at 10 000", sq[1000].steadyQ, sq[10000].steadyQ), ok: sq[1000].steadyQ == sq[10000].steadyQ}
	sqChange := row{scenario: "one controller cycle after its lab changed (one link added), 100 hosts × 10 000 links; baseline: the steady cycle above",
		target: "reported", samples: sq[10000].changed, baseline: sqlite, ok: true}
	sqChangeQ := row{scenario: "database statements per cycle after a lab changed", target: "independent of link count",
		figure: fmt.Sprintf("%d at 1 000 links, %d at 10 000", sq[1000].changedQ, sq[10000].changedQ), ok: sq[1000].changedQ == sq[10000].changedQ}

	bed, err := testbed.New(ctx, testbed.Config{Name: "bench-postgres"})
	if bed != nil {
		defer bed.Close()
	}
	if err != nil {
		return nil, err
	}
	pg, err := bed.StartPostgres(ctx)
	if err != nil {
		return nil, err
	}
	pq := map[int]cycles{}
	for _, links := range []int{1000, 100000} {
		dsn, err := pg.CreateDatabase(ctx, fmt.Sprintf("c%d", links))
		if err != nil {
			return nil, err
		}
		got, err := controllerCycle(ctx, dsn, deployment{hosts: 1000, labs: 100, links: links})
		if err != nil {
			return nil, fmt.Errorf("postgres, %d links: %w", links, err)
		}
		pq[links] = got
	}
	pgSamples := pq[100000].steady
	pgCycle := row{scenario: "one controller cycle, 1000 hosts × 100 000 links in 100 labs, PostgreSQL (agents faked); baseline: the SQLite 100 × 10 000 cycle above",
		target: "≤ 2 s", samples: pgSamples, baseline: sqlite, ok: median(pgSamples) <= 2*time.Second}
	pgQRow := row{scenario: "database statements per cycle, PostgreSQL", target: "same at 1 000 and 100 000 links",
		figure: fmt.Sprintf("%d at 1 000 links, %d at 100 000", pq[1000].steadyQ, pq[100000].steadyQ), ok: pq[1000].steadyQ == pq[100000].steadyQ}
	pgChange := row{scenario: "one controller cycle after one lab changed (one link added), 1000 hosts × 100 000 links, PostgreSQL; baseline: the steady PostgreSQL cycle above",
		target: "reported", samples: pq[100000].changed, baseline: pgSamples, ok: true}
	pgChangeQ := row{scenario: "database statements per cycle after one lab changed, PostgreSQL", target: "same at 1 000 and 100 000 links",
		figure: fmt.Sprintf("%d at 1 000 links, %d at 100 000", pq[1000].changedQ, pq[100000].changedQ), ok: pq[1000].changedQ == pq[100000].changedQ}
	return []row{cycle, q, sqChange, sqChangeQ, pgCycle, pgQRow, pgChange, pgChangeQ}, nil
}

// cycles is what controllerCycle measured: steady cycles, and cycles right
// after one lab changed, each with the statements one sent on average.
type cycles struct {
	steady, changed   []time.Duration
	steadyQ, changedQ int64
}

// controllerCycle stores a running deployment in the database at dsn,
// runs one cycle that allocates it, then times cycleRuns cycles; then
// changeRuns times it adds a link to one lab through the store and times
// the cycle that follows (after an untimed one that settles what that
// cycle allocated).
func controllerCycle(ctx context.Context, dsn string, dep deployment) (cycles, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, dsn, log)
	if err != nil {
		return cycles{}, err
	}
	defer st.Close()
	c, err := controller.New(controller.Config{Listen: ":0", AgentToken: "a", APIToken: "b", AgentTimeout: 10 * time.Second, DeclareTimeout: time.Minute, MaxRequests: 64,
		OfflineAfter: time.Hour, ReconcileInterval: time.Hour, ConvergeEvery: 1, MaxLabNodes: 5000, MaxLabLinks: 20000, Lease: time.Hour,
		Advertise: benchController}, st, log)
	if err != nil {
		return cycles{}, err
	}
	if st.Shared() { // the store declares only under the leader's lease
		if holder, err := st.TakeLease(ctx, benchController, time.Hour); err != nil || holder != benchController {
			return cycles{}, fmt.Errorf("take the lease: held by %q: %v", holder, err)
		}
	}
	agents, addrs, stop, err := fakeAgents(dep.hosts)
	if err != nil {
		return cycles{}, err
	}
	defer stop()
	for h, addr := range addrs {
		if _, err := st.RegisterHost(ctx, store.Host{Name: fmt.Sprintf("h%d", h), Address: addr, DataIP: fmt.Sprintf("10.%d.%d.%d", 1+h/62500, h/250%250, h%250+1)}); err != nil {
			return cycles{}, err
		}
	}
	per, span := dep.links/dep.labs, dep.hostsPerLab()
	for l := range dep.labs {
		lab := topology.Lab{Name: fmt.Sprintf("big%d-%d", dep.links, l)}
		placement := map[string]string{}
		for i := range per {
			a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
			lab.Nodes = append(lab.Nodes, topology.Node{Name: a, Kind: "linux"}, topology.Node{Name: b, Kind: "linux"})
			lab.Links = append(lab.Links, topology.Link{A: topology.Endpoint{Node: a, Iface: "eth1"}, B: topology.Endpoint{Node: b, Iface: "eth1"}})
			placement[a], placement[b] = fmt.Sprintf("h%d", l*span+i%span), fmt.Sprintf("h%d", l*span+(i+1)%span)
		}
		if _, err := st.CreateLab(ctx, lab); err != nil {
			return cycles{}, err
		}
		if err := st.SetPlacements(ctx, lab.Name, placement); err != nil {
			return cycles{}, err
		}
		if err := st.SetLabState(ctx, lab.Name, store.LabRunning, ""); err != nil {
			return cycles{}, err
		}
	}
	c.RunCycle(ctx, 1) // warm: tags, VNIs and tunnel rows allocated, states recorded
	var out cycles
	before := st.Queries()
	for range cycleRuns {
		start := time.Now()
		c.RunCycle(ctx, 1)
		out.steady = append(out.steady, time.Since(start))
	}
	out.steadyQ = (st.Queries() - before) / cycleRuns
	var changedQ int64
	for i := range changeRuns {
		// A new link between two nodes of the lab, on an interface of
		// their own: what a small edit of one lab's file stores.
		add := topology.Link{A: topology.Endpoint{Node: "a0", Iface: fmt.Sprintf("eth%d", i+2)}, B: topology.Endpoint{Node: "b1", Iface: fmt.Sprintf("eth%d", i+2)}}
		if err := st.UpdateLab(ctx, fmt.Sprintf("big%d-%d", dep.links, i%dep.labs), store.LabChange{AddLinks: []topology.Link{add}}); err != nil {
			return cycles{}, err
		}
		before := st.Queries()
		start := time.Now()
		c.RunCycle(ctx, 1)
		out.changed = append(out.changed, time.Since(start))
		changedQ += st.Queries() - before
		c.RunCycle(ctx, 1)
	}
	out.changedQ = changedQ / changeRuns
	// A cycle that failed logs it, unseen. Calls are declarations, and
	// health checks of a host slow to answer one.
	if want := (cycleRuns + 2*changeRuns + 1) * dep.hosts; agents.Calls() < want {
		return cycles{}, fmt.Errorf("the agents got %d calls, want at least %d declarations", agents.Calls(), want)
	}
	return out, ctx.Err()
}

// benchController is the id of the benchmark's controller, which holds
// the lease on PostgreSQL.
const benchController = "http://bench-controller"

// fakeAgents serves n agents that hold everything declared to them, each
// at an address of its own (as n hosts would be, so the controller keeps a
// connection per host), from one handler.
func fakeAgents(n int) (agents *agenttest.Converged, addrs []string, stop func(), err error) {
	agents = &agenttest.Converged{Forget: true}
	srv := &http.Server{Handler: agents, ReadHeaderTimeout: 10 * time.Second}
	stop = func() { srv.Close() }
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		go srv.Serve(ln)
		addrs = append(addrs, "http://"+ln.Addr().String())
	}
	return agents, addrs, stop, nil
}
