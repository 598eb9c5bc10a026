package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/store"
)

// errNoLeader is why a write is refused for now: no controller leads yet
// (one is taking over), or the leader cannot be reached.
var errNoLeader = errors.New("no leader controller reachable: retry later")

// forwardedHeader marks a write a follower passed on to the leader, so a
// controller that lost the lease meanwhile does not pass it on again.
const forwardedHeader = "X-Netloom-Forwarded-By"

// leadership is what this controller knows of who leads. On SQLite it is
// the sole controller and always leads; on PostgreSQL the holder of the
// lease row leads, and the others follow.
type leadership struct {
	sole bool // SQLite: the only controller, locked in

	mu sync.Mutex
	// mu guards the following.
	holder string    // who held the lease at the last look; "" unknown
	until  time.Time // when this controller's lease ends at the latest; zero when not its
	// changed is closed, and replaced, whenever holder or until changes.
	changed chan struct{}
}

// leading reports whether this controller leads now. It counts its lease
// from before it asked for it, so it stops leading no later than the
// database lets another take over, even after the process was frozen.
func (c *Controller) leading() bool {
	if c.lead.sole {
		return true
	}
	c.lead.mu.Lock()
	defer c.lead.mu.Unlock()
	return time.Now().Before(c.lead.until)
}

// leaderID is what the store fences generations with: this controller's
// id on a shared database, "" (none) for the sole controller.
func (c *Controller) leaderID() string {
	if c.lead.sole {
		return ""
	}
	return c.cfg.Advertise
}

// asLeader returns ctx for work only the leader does: the store refuses
// its writes once this controller no longer holds the lease.
func (c *Controller) asLeader(ctx context.Context) context.Context {
	return store.AsLeader(ctx, c.leaderID())
}

// leader returns the address of the controller that leads, "" when none
// is known.
func (c *Controller) leader() string {
	if c.leading() {
		return c.cfg.Advertise
	}
	c.lead.mu.Lock()
	defer c.lead.mu.Unlock()
	if c.lead.holder == c.cfg.Advertise { // ours, expired
		return ""
	}
	return c.lead.holder
}

// renew takes or renews the lease once, and records who holds it.
func (c *Controller) renew(ctx context.Context) error {
	asked := time.Now()
	holder, err := c.store.TakeLease(ctx, c.cfg.Advertise, c.cfg.Lease)
	c.lead.mu.Lock()
	defer c.lead.mu.Unlock()
	defer func() {
		close(c.lead.changed)
		c.lead.changed = make(chan struct{})
	}()
	if err != nil {
		return err // the lease, if ours, runs out on its own
	}
	c.lead.holder = holder
	if holder == c.cfg.Advertise {
		c.lead.until = asked.Add(c.cfg.Lease)
	} else {
		c.lead.until = time.Time{}
	}
	return nil
}

// leadLoop renews the lease every third of it and runs the reconcile loop
// while this controller leads; it steps down, ending the loop, once the
// lease is lost. When ctx ends it gives the lease up, so a follower takes
// over at once.
func (c *Controller) leadLoop(ctx context.Context) {
	var stop func() // ends the reconcile loop; nil while following
	stepDown := func() {
		if stop != nil {
			stop()
			stop = nil
			c.log.Warn("stepped down: another controller leads", "leader", c.leader())
		}
	}
	defer func() {
		stepDown()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := c.store.ReleaseLease(rctx, c.cfg.Advertise); err != nil {
			c.log.Warn("lease not released", "err", err)
		}
	}()
	for {
		if err := c.renew(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("lease not renewed", "err", err)
		}
		switch leads := c.leading(); {
		case leads && stop == nil:
			c.log.Info("leading", "id", c.cfg.Advertise)
			stop = c.startReconcile(ctx)
		case !leads:
			stepDown()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.Lease / 3):
		}
	}
}

// startReconcile runs the reconcile loop until the returned stop is
// called; stop returns once the loop ended.
func (c *Controller) startReconcile(ctx context.Context) (stop func()) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.reconcileLoop(lctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// follow passes the writes a follower receives on to the leader, which
// alone declares: the client's command succeeds against any controller.
// Reads are served from the database by whichever controller gets them.
// While a follower takes over, a write waits for it, up to twice the
// lease.
func (c *Controller) follow(next http.Handler) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse(r.In.Context().Value(leaderKey{}).(string))
			r.SetURL(u)
			r.Out.Header.Set(forwardedHeader, c.cfg.Advertise)
		},
		FlushInterval: -1, // exec streams its output
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c.respond(w, r, 0, nil, fmt.Errorf("%w: forward to the leader: %w", errNoLeader, err))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || !strings.HasPrefix(r.URL.Path, "/api/") || c.leading() {
			next.ServeHTTP(w, r)
			return
		}
		leader, err := c.awaitLeader(r.Context())
		switch {
		case err != nil:
			c.respond(w, r, 0, nil, err)
		case leader == c.cfg.Advertise:
			next.ServeHTTP(w, r)
		case r.Header.Get(forwardedHeader) != "": // the leader it was sent to lost the lease
			c.respond(w, r, 0, nil, fmt.Errorf("%w: %s no longer leads", errNoLeader, c.cfg.Advertise))
		default:
			proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), leaderKey{}, leader)))
		}
	})
}

// leaderKey carries the leader's address to the proxy's Rewrite.
type leaderKey struct{}

// awaitLeader returns the leader's address, waiting up to twice the lease
// for one while none is known.
func (c *Controller) awaitLeader(ctx context.Context) (string, error) {
	t := time.NewTimer(2 * c.cfg.Lease)
	defer t.Stop()
	for {
		c.lead.mu.Lock()
		ch := c.lead.changed
		c.lead.mu.Unlock()
		if l := c.leader(); l != "" {
			return l, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return "", fmt.Errorf("%w: none within %v", errNoLeader, 2*c.cfg.Lease)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// advertised is the URL other controllers reach one listening on listen
// at, when none is given: the machine's name for an unspecified host.
func advertised(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("advertise: %w", err)
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// controllerViews lists the controllers on the database, the leader marked.
func (c *Controller) controllerViews(ctx context.Context) ([]store.ControllerRow, error) {
	if c.lead.sole {
		return []store.ControllerRow{{ID: c.cfg.Advertise, Leader: true}}, nil
	}
	rows, err := c.store.Controllers(ctx)
	if rows == nil {
		rows = []store.ControllerRow{}
	}
	return rows, err
}
