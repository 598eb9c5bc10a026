package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/runtime"
)

// causes are the container events that may leave a node other than the
// agent made it, with the repair cause each stands for. One cause for every
// way a container stops: a stop is a kill, a die and a stop, and a repair
// counts the least cause of its burst, so distinct causes would be counted
// by timing. A start is one too: a container started by hand has a new
// namespace without its interfaces.
var causes = map[string]string{
	"die":     "container died",
	"kill":    "container died",
	"oom":     "container died",
	"stop":    "container died",
	"start":   "container restarted",
	"restart": "container restarted",
	"destroy": "container removed",
}

// Message is one event of the daemon's stream, as far as the runtime reads
// it.
type Message struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string // the container's labels, and its name
	}
}

// Events streams the daemon's events that match filters (the Engine API's
// filter map, e.g. {"type": ["container"]}) to fn until ctx ends, which
// returns nil, or the stream breaks, which returns an error.
func (c *Client) Events(ctx context.Context, filters map[string][]string, fn func(Message)) error {
	f, err := json.Marshal(filters)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodGet, "/events?filters="+url.QueryEscape(string(f)), nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m Message
		if err := dec.Decode(&m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("docker events: the stream ended")
			}
			return fmt.Errorf("docker events: %w", err)
		}
		fn(m)
	}
}

var _ runtime.Watcher = (*Runtime)(nil)

// Watch reports the container events of netloom's nodes (died, killed,
// stopped, out of memory, started, restarted, removed) as they happen, so that a node
// stopped behind the agent's back is repaired within the debounce rather
// than when its namespace, and the host ends in it, finally go (many
// seconds after a stop). It returns an error when the stream breaks (the
// daemon stopped or restarted); events meanwhile are lost, so the caller
// watches again and repairs.
func (r *Runtime) Watch(ctx context.Context, changed func(runtime.Event)) error {
	filters := map[string][]string{
		"type":  {"container"},
		"label": {ident.OwnerKey + "=" + ident.OwnerValue},
		"event": slices.Sorted(maps.Keys(causes)),
	}
	err := r.client.Events(ctx, filters, func(m Message) {
		cause, ok := causes[m.Action]
		lab, node := m.Actor.Attributes[ident.LabKey], m.Actor.Attributes[ident.NodeKey]
		if !ok || lab == "" || node == "" {
			return
		}
		r.log.Debug("container event", "lab", lab, "node", node, "action", m.Action, "container", m.Actor.Attributes["name"])
		changed(runtime.Event{Lab: lab, Node: node, Cause: cause})
	})
	if err != nil {
		return fmt.Errorf("watch containers at %s: %w", r.cfg.Socket, err)
	}
	return nil
}
