package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/controller"
	"github.com/netloom/netloom/internal/store"
)

type controllerOptions struct {
	listen, db, agentTokenFile, apiTokenFile, readTokenFile, logLevel, advertise string
	agentTimeout, declareTimeout, offlineAfter, reconcileInterval, lease         time.Duration
	convergeEvery, maxRequests, dbMaxConns, maxLabNodes, maxLabLinks             int
}

func newControllerCmd(root *rootOptions) *cobra.Command {
	o := &controllerOptions{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: the source of truth for every lab's network",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd, o.logLevel)
			if err != nil {
				return err
			}
			agentToken, err := readToken("agent-token-file", o.agentTokenFile, log)
			if err != nil {
				return err
			}
			apiToken, err := readToken("api-token-file", o.apiTokenFile, log)
			if err != nil {
				return err
			}
			var readOnly string
			if o.readTokenFile != "" {
				if readOnly, err = readToken("read-token-file", o.readTokenFile, log); err != nil {
					return err
				}
			}
			cfg := controller.Config{Listen: o.listen, AgentToken: agentToken, APIToken: apiToken, ReadToken: readOnly,
				AgentTimeout: o.agentTimeout, DeclareTimeout: o.declareTimeout, OfflineAfter: o.offlineAfter,
				ReconcileInterval: o.reconcileInterval, ConvergeEvery: o.convergeEvery, MaxRequests: o.maxRequests,
				MaxLabNodes: o.maxLabNodes, MaxLabLinks: o.maxLabLinks, Advertise: o.advertise, Lease: o.lease}
			if err := cfg.Validate(); err != nil {
				return &usageError{fmt.Errorf("controller: %w", err)}
			}
			if o.dbMaxConns < 1 {
				return &usageError{fmt.Errorf("controller: db-max-conns %d: want 1 or more", o.dbMaxConns)}
			}
			ctx := cmd.Context()
			st, err := store.Open(ctx, o.db, log.With("component", "store"))
			if err != nil {
				return err
			}
			defer st.Close()
			st.SetMaxConns(o.dbMaxConns)
			c, err := controller.New(cfg, st, log)
			if err != nil {
				return err
			}
			return c.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":7400", "address the REST API listens on")
	f.StringVar(&o.db, "db", "sqlite:///var/lib/netloom/netloom.db", "database: sqlite:///path or postgres://…")
	f.StringVar(&o.agentTokenFile, "agent-token-file", "", "file holding the token shared with the agents")
	f.StringVar(&o.apiTokenFile, "api-token-file", "", "file holding the token of API clients: it changes labs and runs commands as root in nodes on every agent host (exec)")
	f.StringVar(&o.readTokenFile, "read-token-file", "", "file holding a read-only token (GET requests and the web view), for monitoring")
	f.DurationVar(&o.agentTimeout, "agent-timeout", 5*time.Second, "timeout of an agent call that answers at once; a declaration whose agent fails its health check meanwhile is given up after it")
	f.DurationVar(&o.declareTimeout, "declare-timeout", 2*time.Minute, "timeout of one declaration to an agent that answers its health checks (it may be making nodes)")
	f.DurationVar(&o.offlineAfter, "offline-after", 90*time.Second, "a host without a heartbeat for this long is offline")
	f.DurationVar(&o.reconcileInterval, "reconcile-interval", time.Minute, "period of the reconcile loop")
	f.IntVar(&o.convergeEvery, "converge-every", 5, "run overlay convergence every N-th reconcile cycle (1: every cycle)")
	f.IntVar(&o.maxRequests, "max-requests", 64, "API requests served at once; more wait up to 1 s, then get 503 with Retry-After")
	f.IntVar(&o.dbMaxConns, "db-max-conns", 8, "connections open to the database at most")
	f.IntVar(&o.maxLabNodes, "max-lab-nodes", 5000, "most nodes a lab may have")
	f.IntVar(&o.maxLabLinks, "max-lab-links", 20000, "most links a lab may have")
	f.StringVar(&o.advertise, "advertise", "", "URL the other controllers on the database reach this one at, and its id (default: http://<listen host, or this machine's name>:<port>)")
	f.DurationVar(&o.lease, "lease", 10*time.Second, "the leader's lease, with several controllers on one PostgreSQL database: a follower takes over within twice it when the leader dies")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.AddCommand(newControllerLsCmd(root))
	return cmd
}

// newControllerLsCmd lists the controllers on the database, and which one
// leads.
func newControllerLsCmd(root *rootOptions) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the controllers on the database and which one leads",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ctls, err := c.Controllers(cmd.Context())
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), ctls)
			}
			t := newTable(cmd.OutOrStdout(), "CONTROLLER", "ROLE", "LAST SEEN")
			for _, ctl := range ctls {
				role := "follower"
				if ctl.Leader {
					role = "leader"
				}
				t.row(ctl.ID, role, ctl.SeenAgo.Round(time.Millisecond).String()+" ago")
			}
			return t.flush()
		},
	}
	o.register(cmd)
	return cmd
}
