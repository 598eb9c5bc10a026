package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// registerLoop registers with the controller, retrying with backoff, then
// heartbeats; a failed heartbeat starts registration again. The agent works
// fully while this fails. A change of the underlay is sent at once.
func (a *Agent) registerLoop(ctx context.Context) {
	client := &http.Client{Timeout: 10 * time.Second}
	backoff := time.Second
	registered := false
	ctls := a.cfg.controllers()
	cur := 0 // the controller spoken to; the next when it fails
	for {
		ctl := ctls[cur]
		var err error
		wait := a.cfg.Heartbeat
		mtu, checks := a.report.get()
		if !registered {
			var resp wire.RegisterResponse
			err = a.post(ctx, client, ctl+"/api/v1/hosts/register", wire.RegisterRequest{
				Name: a.cfg.Name, Address: a.cfg.Advertise, DataIP: a.cfg.DataIP,
				Capabilities: append([]string{"ovs", "vxlan", "declare-state", "host-declaration", wire.CapHostCredential}, a.runtimes()...),
				Version:      a.cfg.Version, ObservedGeneration: a.conv.appliedGeneration(), UnderlayMTU: mtu, Credential: a.cred.get(),
			}, &resp)
			if err == nil {
				err = a.cred.set(resp.Credential)
			}
			if err == nil {
				registered, backoff = true, time.Second
				a.log.Info("registered with controller", "controller", ctl)
				if len(checks) > 0 { // a registration carries no checks
					wait = 0
				}
			}
		} else {
			err = a.post(ctx, client, ctl+"/api/v1/hosts/"+url.PathEscape(a.cfg.Name)+"/heartbeat",
				wire.HeartbeatRequest{ObservedGeneration: a.conv.appliedGeneration(), UnderlayMTU: mtu, Underlay: checks}, nil)
			if err != nil {
				registered = false
			}
		}
		changed := a.report.changed
		if err != nil {
			a.log.Warn("controller unreachable", "controller", ctl, "err", err, "retry_in", backoff)
			if len(ctls) > 1 { // another may answer: it registers the agent anew
				cur, registered = (cur+1)%len(ctls), false
			}
			wait, backoff = backoff, min(2*backoff, 30*time.Second)
			changed = nil // a retry waits out its backoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-changed:
		}
	}
}

// runtimes are the node runtimes the agent offers: netns at least.
func (a *Agent) runtimes() []string {
	if len(a.cfg.Runtimes) == 0 {
		return []string{"netns"}
	}
	return a.cfg.Runtimes
}

// controllers are the controller URLs of Controller, in order.
func (c Config) controllers() []string {
	var out []string
	for _, ctl := range strings.Split(c.Controller, ",") {
		if ctl = strings.TrimRight(strings.TrimSpace(ctl), "/"); ctl != "" {
			out = append(out, ctl)
		}
	}
	return out
}

// post sends one JSON request to a controller's URL with the agent token and
// the host credential, and decodes the answer into out (when not nil). A
// refusal says why, as the controller words it.
func (a *Agent) post(ctx context.Context, client *http.Client, target string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	if c := a.cred.get(); c != "" {
		req.Header.Set(wire.CredentialHeader, c)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(answer, &e)
		return fmt.Errorf("%s: status %d: %s", target, resp.StatusCode, e.Error)
	}
	if out == nil || len(bytes.TrimSpace(answer)) == 0 { // a controller may answer nothing
		return nil
	}
	return json.Unmarshal(answer, out)
}
