package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/wire"
)

// TestStartExec: an agent that does not answer within --agent-timeout, or
// at all, is named with its host; one that answers at once may then stay
// silent far longer.
func TestStartExec(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(stop) }) // before Close: the handler may not see its client go
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.ExecContentType)
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(600 * time.Millisecond): // three agent timeouts
			_, _ = io.WriteString(w, `{"exit_code":0}`+"\n")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(silent.Close)
	down := testbed.RefusedURL(t)

	tests := []struct {
		name    string
		address string
		wantErr string
	}{
		{"hung agent", hung.URL, "exec in node r1: the agent does not answer on host hostA (" + hung.URL + ") within 200ms"},
		{"agent down", down, "exec in node r1: the agent does not answer on host hostA (" + down + "): agent unreachable"},
		{"answers at once, then silent", silent.URL, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(Config{Listen: ":0", AgentToken: "agent", APIToken: "api", AgentTimeout: 200 * time.Millisecond, DeclareTimeout: time.Minute, MaxRequests: 64,
				OfflineAfter: time.Minute, ReconcileInterval: time.Hour, ConvergeEvery: 1, MaxLabNodes: 5000, MaxLabLinks: 20000, Lease: 10 * time.Second}, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			body, err := c.startExec(ctx, cancel, store.Host{Name: "hostA", Address: tt.address},
				wire.ExecRequest{LabID: "lab1", Node: "r1", Argv: []string{"true"}})
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("%v, want %q", err, tt.wantErr)
				}
				if !errors.Is(err, errAgentDown) {
					t.Errorf("%v is not errAgentDown (502)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			if code, err := wire.ReadExecFrames(body, func(wire.ExecFrame) error { return nil }); code != 0 || err != nil {
				t.Errorf("exit %d, %v: a silent command was cut", code, err)
			}
		})
	}
}
