package controller

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/netloom/netloom/internal/agent/agenttest"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// tap serves an agent double and keeps how it answered each host
// declaration: its status and whether the answer was same_answer.
type tap struct {
	agent *agenttest.Converged

	mu sync.Mutex
	// mu guards answers.
	answers []string // "412", "whole" or "same"
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	tp.agent.ServeHTTP(rec, r)
	if r.URL.Path != "/host/declare-state" {
		return
	}
	var resp wire.HostDeclarationResponse
	kind := "whole"
	switch {
	case rec.status != http.StatusOK:
		kind = http.StatusText(rec.status)
	case json.Unmarshal(rec.body.Bytes(), &resp) == nil && resp.SameAnswer:
		kind = "same"
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.answers = append(tp.answers, kind)
}

// since returns the answers after the first n.
func (tp *tap) since(n int) []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string{}, tp.answers[n:]...)
}

func (tp *tap) count() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.answers)
}

// recorder passes a response through and keeps its status and body.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

// TestConditionalRounds runs rounds of an unchanged state: after a deploy
// they go by digest both ways; an agent that lost what it held answers 412
// and gets the declaration whole in the same round; an agent whose answer
// changes answers whole; an agent that registers, and every agent of a
// controller that starts, gets everything whole. Whatever went by digest,
// the lab's view is the same as after a whole round, and its hosts'
// answers are recorded as fresh.
func TestConditionalRounds(t *testing.T) {
	t.Parallel()
	c, api := newTestController(t, time.Minute)
	ctx := t.Context()
	a, b := &tap{agent: &agenttest.Converged{}}, &tap{agent: &agenttest.Converged{}}
	srvs := serveHosts(t, c, map[string]http.Handler{"hostA": a, "hostB": b})
	_, want := applyAndWait(t, c, threeNodes)
	if want.State != store.LabRunning {
		t.Fatalf("lab %s %q", want.State, want.StateError)
	}
	// When the hosts answered changes with each round; nothing else does.
	ignoreTimes := cmpopts.IgnoreTypes(time.Time{}, (*time.Time)(nil))

	both := map[string]bool{"hostA": true, "hostB": true}
	tests := []struct {
		name   string
		before func()
		sameAs map[string]bool // the hosts whose declarations go by digest in the end
		wantA  []string
		wantB  []string
		errorB bool // hostB's side of the cross-host link is an error
	}{
		{name: "by digest both ways", sameAs: both, wantA: []string{"same"}, wantB: []string{"same"}},
		{name: "by digest again: the answers as held, on the held state", sameAs: both, wantA: []string{"same"}, wantB: []string{"same"}},
		{name: "agent lost what it held", before: func() { a.agent.ForgetHeld() },
			sameAs: map[string]bool{"hostB": true},
			wantA:  []string{http.StatusText(http.StatusPreconditionFailed), "same"}, wantB: []string{"same"}},
		{name: "answer changed", before: func() { b.agent.Fail("ovsdb: constraint violation") }, sameAs: both,
			wantA: []string{"same"}, wantB: []string{"whole"}, errorB: true},
		{name: "answer changed back", before: func() { b.agent.Fail("") }, sameAs: both, wantA: []string{"same"}, wantB: []string{"whole"}},
		{name: "agent registered again: its round goes whole", before: func() {
			reg, _ := json.Marshal(wire.RegisterRequest{Name: "hostB", Address: srvs["hostB"].URL, DataIP: "10.77.0.2"})
			if code := do(t, api, "POST", "/api/v1/hosts/register", "agent", "", string(reg), nil); code != 200 {
				t.Fatalf("register: %d", code)
			}
			c.bg.Wait()
		}, sameAs: both, wantA: []string{"same"}, wantB: []string{"whole", "same"}},
		{name: "controller restarted", before: func() {
			restarted, err := New(c.cfg, c.store, c.log)
			if err != nil {
				t.Fatal(err)
			}
			c = restarted
		}, wantA: []string{"whole"}, wantB: []string{"whole"}},
	}
	for _, tt := range tests { // in order: each round follows the one before
		na, nb := a.count(), b.count()
		if tt.before != nil {
			tt.before()
		}
		start := time.Now()
		if _, err := c.converge(ctx, nil, nil); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.wantA, a.since(na)); diff != "" {
			t.Errorf("%s: hostA answered (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(tt.wantB, b.since(nb)); diff != "" {
			t.Errorf("%s: hostB answered (-want +got):\n%s", tt.name, diff)
		}
		for host, tp := range map[string]*tap{"hostA": a, "hostB": b} {
			d := tp.agent.Declared()
			if last := d[len(d)-1]; (last.SameAs != "") != tt.sameAs[host] || len(last.Nodes) == 0 {
				t.Errorf("%s: %s's last declaration stood for %d nodes, same_as %q; want by digest %v", tt.name, host, len(last.Nodes), last.SameAs, tt.sameAs[host])
			}
		}
		v, err := c.store.LabView(ctx, "lab1")
		if err != nil {
			t.Fatal(err)
		}
		if tt.errorB {
			if v.Links[1].ActualState != store.LinkError || v.State != store.LabError {
				t.Errorf("%s: link %+v, lab %s: want the cross-host link in error", tt.name, v.Links[1], v.State)
			}
			continue
		}
		if diff := cmp.Diff(want, v, ignoreTimes); diff != "" {
			t.Errorf("%s: lab view (-whole round +this one):\n%s", tt.name, diff)
		}
		fresh := func(what string, at *time.Time) {
			if at == nil || at.Before(start.Add(-time.Second)) { // stored to the second, or less
				t.Errorf("%s: %s verified at %v, want this round (%v)", tt.name, what, at, start)
			}
		}
		for _, n := range v.Nodes {
			fresh("node "+n.Name, n.VerifiedAt)
		}
		for _, l := range v.Links {
			fresh("link "+l.Name, l.VerifiedAt)
		}
	}
}
