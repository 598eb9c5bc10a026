package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netloom/netloom/internal/agent/underlay"
	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// Config is the agent's configuration, filled once from flags.
type Config struct {
	Listen         string        // e.g. ":7401"
	Controller     string        // e.g. "http://10.0.0.10:7400", or several comma-separated; empty runs without one
	Name           string        // the host's name, e.g. "hostA"
	DataIP         string        // the underlay address tunnels start from
	Advertise      string        // how the controller reaches the agent
	StateDir       string        // holds the declared-state cache
	Token          string        // shared agent token; never logged
	MTU            int           // of tunnels that declare none
	HealthInterval time.Duration // the safety-net repair pass
	Debounce       time.Duration // how long drift events gather before a repair
	Heartbeat      time.Duration // to the controller
	RequestTimeout time.Duration // of one API request's work
	// UnderlayInterval is how often the underlay to the peers is checked
	// when nothing changes.
	UnderlayInterval time.Duration
	// MaxGenerationJump bounds how far ahead of the last applied generation
	// a declaration may be (DefaultMaxGenerationJump).
	MaxGenerationJump int64
	// AcceptUnfenced takes declarations without a generation, as the
	// original controller sends them; off, they are refused.
	AcceptUnfenced bool
	Version        string
	// Runtimes are the node runtimes this host offers ("netns", "docker"),
	// reported to the controller at registration.
	Runtimes []string
	// FullChecksums has nodes made with transmit checksum offload off, for
	// a fabric whose tunnels cannot complete partial checksums.
	FullChecksums bool
}

// Validate checks the configuration, naming every bad field.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: empty"))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if ip := net.ParseIP(c.DataIP); ip == nil || ip.To4() == nil {
		errs = append(errs, fmt.Errorf("data-ip %q: want an IPv4 address", c.DataIP))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state-dir: empty"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token: empty (give --token-file)"))
	}
	for _, ctl := range c.controllers() {
		if u, err := url.Parse(ctl); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("controller %q: want an http:// or https:// URL", ctl))
		}
	}
	if c.MaxGenerationJump <= 0 {
		errs = append(errs, fmt.Errorf("max-generation-jump %d: want more than 0", c.MaxGenerationJump))
	}
	if c.MTU < 68 || c.MTU > 65535 {
		errs = append(errs, fmt.Errorf("mtu %d: want 68 to 65535", c.MTU))
	}
	for name, d := range map[string]time.Duration{"health-interval": c.HealthInterval, "debounce": c.Debounce, "heartbeat": c.Heartbeat, "request-timeout": c.RequestTimeout, "underlay-interval": c.UnderlayInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: want more than 0", name, d))
		}
	}
	return errors.Join(errs...)
}

// Agent is one host's agent.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	conv *converger
	drv  fabric.Driver
	// watchers are the runtimes that report their nodes' events.
	watchers []runtime.Watcher
	// ready is set once the start-up restore has run.
	ready atomic.Bool
	// probe checks the underlay; report holds what it last found.
	probe  *underlay.Prober
	report *underlayReport
	// cred binds the agent to its host's name at the controller.
	cred *credential
}

// New builds an agent on a driver and a runtime.
func New(cfg Config, d fabric.Driver, rt runtime.Runtime, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The probe namespace is named after the agent's own: simulated hosts
	// share /run/netns.
	self, err := nlns.Identify()
	if err != nil {
		return nil, err
	}
	probe, err := underlay.New(underlay.Config{DataIP: netip.MustParseAddr(cfg.DataIP), Port: fabric.DefaultDstPort,
		ProbeNetns: ident.UnderlayNamespaceName(self, cfg.Name), Timeout: probeTimeout}, log)
	if err != nil {
		return nil, err
	}
	cred, err := loadCredential(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	conv := newConverger(d, rt, cfg.StateDir, cfg.MTU, generations{maxJump: cfg.MaxGenerationJump, acceptUnfenced: cfg.AcceptUnfenced}, log, m)
	conv.fullChecksums = cfg.FullChecksums
	return &Agent{cfg: cfg, log: log, m: m, drv: d, watchers: watchers(rt), conv: conv,
		probe: probe, report: newUnderlayReport(), cred: cred}, nil
}

// Handler returns the agent API, for tests that serve it themselves.
func (a *Agent) Handler() http.Handler { return a.routes() }

// Run restores from the cache, then serves the API, repairs drift and keeps
// registered with the controller until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve: %w", err)
		}
	})
	a.log.Info("agent serving", "listen", ln.Addr().String(), "host", a.cfg.Name)
	// Restore before registering: the host converges with or without a
	// controller. A bridge that cannot be read now is retried by repair.
	if err := a.conv.restore(ctx); err != nil {
		a.log.Error("restore incomplete", "err", err)
	}
	a.ready.Store(true)
	wg.Go(func() {
		if err := a.repairLoop(ctx); err != nil {
			errc <- err
		}
	})
	// Measured before registering, which reports it; the peers are checked
	// meanwhile.
	a.measureUnderlayMTU()
	wg.Go(func() { a.underlayLoop(ctx) })
	if a.cfg.Controller != "" {
		wg.Go(func() { a.registerLoop(ctx) })
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	wg.Wait()
	return runErr
}

// repairLoop repairs what the agent keeps when the driver or a runtime
// reports drift on it, and on every health pass.
func (a *Agent) repairLoop(ctx context.Context) error {
	d := a.conv.drift
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer watching.Wait()
	defer stopWatch()
	for _, w := range a.watchers {
		watching.Go(func() { a.watchRuntime(watchCtx, w, d) })
	}
	werr := make(chan error, 1)
	watch := func() {
		// The callback only records: it must never block the driver.
		werr <- a.drv.Watch(watchCtx, d.fabricEvent)
	}
	go watch()
	health := time.NewTicker(a.cfg.HealthInterval)
	defer health.Stop()
	for {
		cause := ""
		select {
		case <-ctx.Done():
			return nil
		case err := <-werr:
			if ctx.Err() != nil {
				return nil
			}
			// Events may have been lost: watch again, and repair whatever
			// drifted meanwhile.
			a.log.Warn("drift watch interrupted; resyncing", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			go watch()
			cause = "resync"
		case <-health.C:
			cause = "health"
		case <-d.wake:
			// Let a burst of events gather into one repair, and let a
			// convergence that may make it needless go first.
			if !a.conv.settled(ctx, a.cfg.Debounce) {
				return nil
			}
			g := d.take()
			if g.cause == "" { // an extra wake-up: the events went with the last repair
				continue
			}
			if !a.conv.relevant(g) {
				continue
			}
			cause = g.cause
		}
		if err := a.conv.repair(ctx, cause); err != nil {
			a.log.Warn("repair failed", "cause", cause, "err", err)
		}
	}
}

// workContext bounds a request's work by d but not by its client: a
// convergence that a controller gave up waiting for still runs to its end,
// rather than stopping half-way through a host.
func workContext(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), d)
}
