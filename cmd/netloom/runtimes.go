package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/docker"
	"github.com/netloom/netloom/internal/runtime/netns"
)

// knownRuntimes are the node runtimes an agent can offer, in the order it
// reports them.
var knownRuntimes = []string{"netns", "docker"}

// runtimeChoice is what --runtimes asks for: the runtimes named, or, when
// none is, netns and docker where its daemon answers.
type runtimeChoice struct {
	names []string // in knownRuntimes order; empty: the default
}

// parseRuntimes reads --runtimes, a comma list; an unknown name is a usage
// error that names it.
func parseRuntimes(s string) (runtimeChoice, error) {
	var c runtimeChoice
	if strings.TrimSpace(s) == "" {
		return c, nil
	}
	asked := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(knownRuntimes, name) {
			return c, usagef("--runtimes: unknown runtime %q (want a comma list of %s)", name, strings.Join(knownRuntimes, ", "))
		}
		asked[name] = true
	}
	for _, name := range knownRuntimes {
		if asked[name] {
			c.names = append(c.names, name)
		}
	}
	return c, nil
}

// build makes the runtimes chosen, as one set, and the names the agent
// reports at registration. Docker named explicitly must answer at socket;
// by default it is offered only if it does. Every set runs the host
// pseudo-node, whatever was chosen: it is no runtime a lab picks.
func (c runtimeChoice) build(ctx context.Context, socket string, log *slog.Logger) (runtime.Set, []string, error) {
	var set runtime.Set
	var offered []string
	host, err := netns.NewHost(netns.Config{}, log.With("component", "host"))
	if err != nil {
		return set, nil, err
	}
	set.Host = host
	wantNetns, wantDocker := c.names == nil || slices.Contains(c.names, "netns"), slices.Contains(c.names, "docker")
	if wantNetns {
		plain, err := netns.New(netns.Config{}, log.With("component", "netns"))
		if err != nil {
			return set, nil, err
		}
		set.Plain, offered = plain, append(offered, "netns")
	}
	if wantDocker && socket == "" {
		return set, nil, usagef("--runtimes docker: --docker-socket is empty")
	}
	if socket == "" || (c.names != nil && !wantDocker) {
		return set, offered, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	images, err := docker.New(pctx, docker.Config{Socket: socket}, log.With("component", "docker"))
	cancel()
	switch {
	case err != nil && wantDocker:
		return set, nil, fmt.Errorf("--runtimes docker: %w", err)
	case err != nil:
		log.Info("no container runtime: nodes with an image cannot run here", "err", err)
	default:
		set.Images, offered = images, append(offered, "docker")
	}
	return set, offered, nil
}
