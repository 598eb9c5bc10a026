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
	Listen       string        // e.g. ":7400"
	AgentToken   string        // shared with the agents; never logged
	APIToken     string        // for API clients; never logged
	AgentTimeout time.Duration // of one call to an agent
	OfflineAfter time.Duration // without a heartbeat, a host is offline
	// ReconcileInterval is the loop's period; overlay convergence runs
	// every ConvergeEvery-th cycle (1: every cycle).
	ReconcileInterval time.Duration
	ConvergeEvery     int
	// MappingMaxAge is how long an interface mapping is trusted after it was
	// last verified (W-15); 0 means three convergence periods.
	MappingMaxAge time.Duration
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
	if c.AgentTimeout <= 0 || c.OfflineAfter <= 0 || c.ReconcileInterval <= 0 {
		errs = append(errs, errors.New("agent timeout, offline-after and reconcile-interval: want more than 0"))
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

	// convMu keeps a convergence round from overlapping the teardown of a
	// lab: declaring a state read before the teardown would bring back
	// what it removed.
	convMu sync.Mutex

	mu sync.Mutex
	// mu guards the following.
	labMus    map[string]*sync.Mutex           // serialise deploys and destroys of one lab
	summaries map[string]wire.AgentConvergence // each agent's last convergence
}

// New builds a controller on a store.
func New(cfg Config, st *store.Store, log *slog.Logger) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, store: st, log: log, http: &http.Client{}, labMus: map[string]*sync.Mutex{}, summaries: map[string]wire.AgentConvergence{}}, nil
}

// Handler returns the REST API, for tests that serve it themselves.
func (c *Controller) Handler() http.Handler { return c.routes() }

// Run serves the REST API until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.cfg.Listen, err)
	}
	if n, err := c.store.InterruptDeploys(ctx); err != nil {
		return err
	} else if n > 0 {
		c.log.Warn("deploys interrupted by a restart will run again", "labs", n)
	}
	srv := &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	c.log.Info("controller serving", "listen", ln.Addr().String())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		c.reconcileLoop(ctx)
	}()
	defer func() { <-loopDone }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// labLock returns the lock of one lab's deploys and destroys.
func (c *Controller) labLock(lab string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.labMus[lab]
	if !ok {
		m = &sync.Mutex{}
		c.labMus[lab] = m
	}
	return m
}

// agent returns a client of a host's agent.
func (c *Controller) agent(h store.Host) *client.Client {
	return client.New(h.Address, c.cfg.AgentToken, c.http)
}

// online reports whether a host heartbeated recently enough.
func (c *Controller) online(h store.Host) bool {
	return time.Since(h.LastHeartbeat) < c.cfg.OfflineAfter
}

// callCtx bounds one agent call.
func (c *Controller) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.AgentTimeout)
}
