package controller

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/store"
)

// sharedControllers starts n controllers on one database as if it were
// shared (SQLite stands in for PostgreSQL: the lease works the same), each
// serving its API; none leads until its lease is renewed.
func sharedControllers(t *testing.T, n int) ([]*Controller, []*httptest.Server, *store.Store) {
	t.Helper()
	st, log := testStore(t)
	var cs []*Controller
	var srvs []*httptest.Server
	for range n {
		srv := httptest.NewUnstartedServer(nil)
		c, err := New(Config{Listen: ":0", Advertise: "http://" + srv.Listener.Addr().String(), AgentToken: "agent", APIToken: "api",
			AgentTimeout: time.Second, DeclareTimeout: time.Minute, MaxRequests: 64, OfflineAfter: time.Minute, ReconcileInterval: time.Hour,
			ConvergeEvery: 1, MaxLabNodes: 5000, MaxLabLinks: 20000, Lease: 5 * time.Second}, st, log)
		if err != nil {
			t.Fatal(err)
		}
		c.lead.sole = false
		srv.Config.Handler = c.routes()
		srv.Start()
		t.Cleanup(srv.Close)
		cs, srvs = append(cs, c), append(srvs, srv)
	}
	return cs, srvs, st
}

// TestFollowerForwards: a write to a follower is done by the leader, a
// read is served where it arrives, and a write passed on once is not
// passed on again.
func TestFollowerForwards(t *testing.T) {
	t.Parallel()
	cs, srvs, _ := sharedControllers(t, 2)
	leader, follower := cs[0], cs[1]
	for _, c := range cs {
		if err := c.renew(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if !leader.leading() || follower.leading() || follower.leader() != leader.cfg.Advertise {
		t.Fatalf("leading %v/%v, follower sees %q; want the first to lead", leader.leading(), follower.leading(), follower.leader())
	}
	lab := `{"name":"lab1","nodes":[{"name":"r1","kind":"linux"}]}`
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		forwarded bool
		want      int
	}{
		{"write through the follower", "POST", "/api/v1/labs", lab, false, http.StatusCreated},
		{"read on the follower", "GET", "/api/v1/labs/lab1", "", false, http.StatusOK},
		{"write passed on already", "POST", "/api/v1/labs", lab, true, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, srvs[1].URL+tt.path, nil)
		if tt.body != "" {
			req, _ = http.NewRequestWithContext(t.Context(), tt.method, srvs[1].URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer api")
		if tt.forwarded {
			req.Header.Set(forwardedHeader, "http://elsewhere")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	var health struct {
		Leader  string
		Leading bool
	}
	if code := do(t, srvs[1], "GET", "/healthz", "", "", "", &health); code != http.StatusOK || health.Leader != leader.cfg.Advertise || health.Leading {
		t.Errorf("follower's healthz %d %+v; want the leader named", code, health)
	}
}

// TestDeposedLeaderFenced: a leader whose lease another took while it was
// frozen still believes it leads for a moment, but gets no generation, so
// it declares nothing; it steps down at its next renewal.
func TestDeposedLeaderFenced(t *testing.T) {
	t.Parallel()
	cs, _, st := sharedControllers(t, 2)
	old, next := cs[0], cs[1]
	if err := old.renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Frozen past its lease: the database lets the lease go.
	if _, err := st.TakeLease(t.Context(), old.cfg.Advertise, -time.Second); err != nil {
		t.Fatal(err)
	}
	if err := next.renew(t.Context()); err != nil || !next.leading() {
		t.Fatalf("follower after the lease expired: leading %v, %v", next.leading(), err)
	}
	if !old.leading() {
		t.Fatal("the old leader stopped leading before its own clock said so: the test shows nothing")
	}
	if _, err := old.converge(t.Context(), nil, nil); !errors.Is(err, store.ErrNotLeader) {
		t.Errorf("round of the deposed leader: %v; want ErrNotLeader", err)
	}
	if _, err := next.converge(t.Context(), nil, nil); err != nil {
		t.Errorf("round of the new leader: %v", err)
	}
	if err := old.renew(t.Context()); err != nil || old.leading() || old.leader() != next.cfg.Advertise {
		t.Errorf("old leader after renewing: leading %v, sees %q, %v; want it following the new one", old.leading(), old.leader(), err)
	}
}
