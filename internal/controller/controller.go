package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// Config is the controller's configuration, filled once from flags.
type Config struct {
	Listen     string // e.g. ":7400"
	AgentToken string // shared with the agents; never logged
	APIToken   string // for API clients; never logged
	// ReadToken, when set, reads the API (GET) and the web view, and
	// changes nothing; never logged.
	ReadToken    string
	AgentTimeout time.Duration // of an agent call that answers at once: a health check, an exec's start
	OfflineAfter time.Duration // without a heartbeat, a host is offline
	// MaxRequests bounds the API requests served at once; more wait a
	// moment, then get 503 with Retry-After.
	MaxRequests int
	// DeclareTimeout bounds a declaration, which may place nodes; one is
	// given up after AgentTimeout all the same when its agent does not
	// answer a health check meanwhile.
	DeclareTimeout time.Duration
	// ReconcileInterval is the loop's period; a round declaring every
	// host's state runs every ConvergeEvery-th cycle (1: every cycle).
	ReconcileInterval time.Duration
	ConvergeEvery     int
	// MaxLabNodes and MaxLabLinks cap a lab's size: a bigger one is refused
	// (413) before anything is stored.
	MaxLabNodes, MaxLabLinks int
	// Advertise is the URL other controllers forward writes to, and this
	// controller's id on a shared database; "" derives it from Listen.
	Advertise string
	// Lease is how long the leader's lease lasts on a shared database
	// (PostgreSQL): the leader renews it every third of it, and a follower
	// takes over within twice it when the leader dies.
	Lease time.Duration
}

// Validate checks the configuration, naming every bad field.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: empty"))
	}
	if c.AgentToken == "" {
		errs = append(errs, errors.New("agent token: empty (give --agent-token-file)"))
	}
	if c.APIToken == "" {
		errs = append(errs, errors.New("api token: empty (give --api-token-file)"))
	}
	if c.AgentToken != "" && c.AgentToken == c.APIToken {
		errs = append(errs, errors.New("api token: must differ from the agent token"))
	}
	if c.ReadToken != "" && (c.ReadToken == c.APIToken || c.ReadToken == c.AgentToken) {
		errs = append(errs, errors.New("read token: must differ from the api and agent tokens"))
	}
	if c.AgentTimeout <= 0 || c.OfflineAfter <= 0 || c.ReconcileInterval <= 0 {
		errs = append(errs, errors.New("agent timeout, offline-after and reconcile-interval: want more than 0"))
	}
	if c.MaxLabNodes < 1 || c.MaxLabLinks < 1 {
		errs = append(errs, errors.New("max-lab-nodes and max-lab-links: want 1 or more"))
	}
	if c.DeclareTimeout < c.AgentTimeout {
		errs = append(errs, fmt.Errorf("declare timeout %v: want at least the agent timeout (%v)", c.DeclareTimeout, c.AgentTimeout))
	}
	if c.MaxRequests < 1 {
		errs = append(errs, fmt.Errorf("max-requests %d: want 1 or more", c.MaxRequests))
	}
	if c.Lease <= 0 {
		errs = append(errs, fmt.Errorf("lease %v: want more than 0", c.Lease))
	}
	if c.ConvergeEvery < 1 {
		errs = append(errs, fmt.Errorf("converge-every %d: want 1 or more", c.ConvergeEvery))
	}
	return errors.Join(errs...)
}

// Controller is the controller.
type Controller struct {
	cfg   Config
	store *store.Store
	log   *slog.Logger
	http  *http.Client

	// stateMu serialises the changes of the desired state with the halves
	// of the rounds that read and record it: a deploy or destroy changes the
	// state and prepares its round in one hold, so no round declares a state
	// read before a change (W-4). It is never held across a call to an
	// agent: the lines order those, per host.
	stateMu sync.Mutex
	// stateMu guards the following.
	changes  uint64           // counts the writes under stateMu
	held     *heldState       // the desired state kept between rounds; nil: read it
	prepared map[string]int64 // host → the newest generation prepared for it
	settled  map[string]int64 // host → the generation of its last recorded answer
	// settledCh is closed, and replaced, whenever settled changes.
	settledCh chan struct{}

	lines *hostLines
	conds conditions
	lead  leadership

	bg sync.WaitGroup // deploys running after their request

	webDone chan struct{} // closed on shutdown: ends the web view's event streams

	slots    chan struct{} // one per API request being served
	failures failureLog
	views    views

	mu sync.Mutex
	// mu guards the following.
	summaries map[string]wire.AgentConvergence // each agent's last convergence
}

// New builds a controller on a store.
func New(cfg Config, st *store.Store, log *slog.Logger) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Advertise == "" {
		var err error
		if cfg.Advertise, err = advertised(cfg.Listen); err != nil {
			return nil, err
		}
	}
	return &Controller{cfg: cfg, store: st, log: log, http: agentHTTP(), summaries: map[string]wire.AgentConvergence{},
		lead:    leadership{sole: st == nil || !st.Shared(), changed: make(chan struct{})}, // nil: tests of parts without a store
		webDone: make(chan struct{}), prepared: map[string]int64{}, lines: newHostLines(),
		settled: map[string]int64{}, settledCh: make(chan struct{}),
		slots: make(chan struct{}, cfg.MaxRequests), failures: failureLog{seen: map[failureKey]*failureCount{}},
		views: views{entries: map[string]*view{}}}, nil
}

// Handler returns the REST API, for tests that serve it themselves.
func (c *Controller) Handler() http.Handler { return c.routes() }

// Run serves the REST API until ctx ends, and runs the reconcile loop
// while this controller leads: always on SQLite, which a second controller
// is refused, and while it holds the lease on PostgreSQL.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.store.LockSole(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.cfg.Listen, err)
	}
	srv := &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(func() { close(c.webDone) }) // Shutdown waits for them
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	c.log.Info("controller serving", "listen", ln.Addr().String(), "id", c.cfg.Advertise)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		if c.lead.sole {
			c.reconcileLoop(ctx)
		} else {
			c.leadLoop(ctx)
		}
	}()
	defer func() {
		<-loopDone
		c.bg.Wait()
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// agentHTTP is the HTTP client of the agent calls. It keeps an idle
// connection to every host, however many: the default transport keeps 100
// in all, so a round over 1000 hosts would open 900 connections anew.
func agentHTTP() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no bound but the per-host one
	return &http.Client{Transport: t}
}

// agent returns a client of a host's agent.
func (c *Controller) agent(h store.Host) *client.Client {
	return client.New(h.Address, c.cfg.AgentToken, c.http).WithCredential(h.Credential).From(c.cfg.Advertise)
}

// online reports whether a host heartbeated recently enough.
func (c *Controller) online(h store.Host) bool {
	return time.Since(h.LastHeartbeat) < c.cfg.OfflineAfter
}
