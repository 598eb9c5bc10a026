package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/agent"
	"github.com/netloom/netloom/internal/fabric/ovs"
)

type agentOptions struct {
	listen, controller, name, dataIP, advertise, stateDir string
	ovsdb, bridge, datapath, tunnels, tokenFile, logLevel string
	dockerSocket, runtimes                                string
	mtu                                                   int
	maxGenerationJump                                     int64
	acceptUnfenced                                        bool
	healthInterval, underlayInterval, requestTimeout      time.Duration
}

func newAgentCmd(_ *rootOptions) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: keep this host's bridge, tunnels and node ports as declared",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd, o.logLevel)
			if err != nil {
				return err
			}
			choice, err := parseRuntimes(o.runtimes)
			if err != nil {
				return err
			}
			token, err := readToken("token-file", o.tokenFile, log)
			if err != nil {
				return err
			}
			cfg := agent.Config{
				Listen: o.listen, Controller: o.controller, Name: o.name, DataIP: o.dataIP,
				Advertise: o.advertise, StateDir: o.stateDir, Token: token, MTU: o.mtu,
				HealthInterval: o.healthInterval, Debounce: 50 * time.Millisecond,
				Heartbeat: 10 * time.Second, RequestTimeout: o.requestTimeout, UnderlayInterval: o.underlayInterval, Version: version,
				MaxGenerationJump: o.maxGenerationJump, AcceptUnfenced: o.acceptUnfenced,
			}
			if cfg.Advertise == "" {
				_, port, _ := net.SplitHostPort(o.listen)
				cfg.Advertise = "http://" + net.JoinHostPort(o.dataIP, port)
			}
			fab := ovs.Config{OVSDB: o.ovsdb, Bridge: o.bridge, Datapath: o.datapath, Tunnels: o.tunnels}
			if err := errors.Join(cfg.Validate(), fab.Validate()); err != nil {
				return &usageError{fmt.Errorf("agent: %w", err)}
			}
			ctx := cmd.Context()
			// Nodes with an image run on Docker: named, it must answer; by
			// default, where its daemon answers.
			rt, offered, err := choice.build(ctx, o.dockerSocket, log)
			if err != nil {
				return err
			}
			cfg.Runtimes = offered
			d, err := ovs.New(ctx, fab, log.With("component", "ovs"))
			if err != nil {
				return err
			}
			defer d.Close()
			cfg.FullChecksums = d.NodesNeedFullChecksums()
			a, err := agent.New(cfg, d, rt, log)
			if err != nil {
				return err
			}
			log.Info("agent starting", "host", cfg.Name, "runtimes", cfg.Runtimes, "data_ip", cfg.DataIP, "bridge", o.bridge,
				"datapath", d.Datapath(), "tunnels", d.Tunnels(), "controller", cfg.Controller, "state_dir", cfg.StateDir)
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":7401", "address the agent API listens on")
	f.StringVar(&o.controller, "controller", "", "controller URL, e.g. http://10.0.0.10:7400 (empty: run without one)")
	f.StringVar(&o.name, "name", "", "this host's name")
	f.StringVar(&o.dataIP, "data-ip", "", "this host's underlay address, where tunnels start")
	f.StringVar(&o.advertise, "advertise", "", "URL the controller reaches this agent at (default http://<data-ip>:<listen port>)")
	f.StringVar(&o.stateDir, "state-dir", "/var/lib/netloom-agent", "folder of the declared-state cache")
	f.StringVar(&o.ovsdb, "ovsdb", "unix:/run/openvswitch/db.sock", "OVSDB endpoint")
	f.StringVar(&o.bridge, "bridge", "netloom0", "OVS bridge of the labs")
	f.StringVar(&o.datapath, "ovs-datapath", ovs.DatapathAuto, "bridge datapath: auto, system or netdev")
	f.StringVar(&o.tunnels, "tunnel-ports", ovs.TunnelsKernel,
		"how tunnels are made: kernel (a VXLAN device each, a system port) or ovs (OVS's own VXLAN ports; thousands of tunnels, see the README)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the shared agent token")
	f.IntVar(&o.mtu, "mtu", 1450, "MTU of tunnels that declare none")
	f.DurationVar(&o.healthInterval, "health-interval", time.Minute, "interval of the safety-net repair pass")
	f.DurationVar(&o.requestTimeout, "request-timeout", 2*time.Minute,
		"how long one API request's work may take; a host of thousands of tunnels on the userspace datapath needs more")
	f.DurationVar(&o.underlayInterval, "underlay-interval", 2*time.Minute, "interval of the underlay check to the peers (VXLAN port, path MTU with DF)")
	f.Int64Var(&o.maxGenerationJump, "max-generation-jump", agent.DefaultMaxGenerationJump,
		"how far ahead of the last applied generation a declaration may be (a fresh agent takes any up to 2^53)")
	f.BoolVar(&o.acceptUnfenced, "accept-unfenced", false, "take declarations without a generation, as the original controller sends them")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.dockerSocket, "docker-socket", "/var/run/docker.sock", "Docker daemon that runs nodes with an image, if it answers (empty: none)")
	f.StringVar(&o.runtimes, "runtimes", "", "node runtimes to offer, a comma list of netns, docker (default: netns, plus docker when --docker-socket answers)")
	return cmd
}

// minToken is the shortest token a token file may hold.
const minToken = 16

// readToken reads the token file a flag names; the token is never logged.
// A token shorter than minToken is refused; a file others may read is
// warned about on log, when given.
func readToken(flag, path string, log *slog.Logger) (string, error) {
	if path == "" {
		return "", usagef("--%s: required", flag)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	token := strings.TrimSpace(string(data))
	if len(token) < minToken {
		return "", fmt.Errorf("--%s: %s holds a token of %d bytes: want at least %d (e.g. openssl rand -hex 32 > %s)", flag, path, len(token), minToken, path)
	}
	if log != nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("token file readable by others: chmod 600 it", "flag", "--"+flag, "path", path, "mode", fi.Mode().Perm().String())
	}
	return token, nil
}

// newLogger logs text lines to stderr at the given level.
func newLogger(cmd *cobra.Command, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: %q is not one of debug, info, warn, error", level)
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: l})), nil
}
