package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/wire"
)

// TestStatusErrors checks that every answer, and the lack of one, comes back
// as the one sentinel a caller branches on: an agent that answers 500 has
// failed, it is not down.
func TestStatusErrors(t *testing.T) {
	t.Parallel()
	sentinels := map[string]error{
		"ErrUnreachable": ErrUnreachable, "ErrAgentFailed": ErrAgentFailed, "ErrUnauthorized": ErrUnauthorized,
		"ErrNotFound": ErrNotFound, "ErrConflict": ErrConflict, "ErrBadRequest": ErrBadRequest, "ErrNotHeld": ErrNotHeld,
	}
	tests := []struct {
		name   string
		status int  // the agent's answer
		closed bool // no agent listens
		want   error
	}{
		{name: "ok", status: http.StatusOK},
		{name: "bad request", status: http.StatusBadRequest, want: ErrBadRequest},
		{name: "body too large", status: http.StatusRequestEntityTooLarge, want: ErrBadRequest},
		{name: "unprocessable", status: http.StatusUnprocessableEntity, want: ErrBadRequest},
		{name: "unauthorized", status: http.StatusUnauthorized, want: ErrUnauthorized},
		{name: "forbidden", status: http.StatusForbidden, want: ErrUnauthorized},
		{name: "not found", status: http.StatusNotFound, want: ErrNotFound},
		{name: "no such method", status: http.StatusMethodNotAllowed, want: ErrNotFound},
		{name: "stale generation", status: http.StatusConflict, want: ErrStaleGeneration},
		{name: "declaration not held", status: http.StatusPreconditionFailed, want: ErrNotHeld},
		{name: "internal error", status: http.StatusInternalServerError, want: ErrAgentFailed},
		{name: "service unavailable", status: http.StatusServiceUnavailable, want: ErrAgentFailed},
		{name: "a status the agent does not send", status: http.StatusTeapot, want: ErrAgentFailed},
		{name: "closed server", closed: true, want: ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					http.Error(w, "no token", http.StatusUnauthorized)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				if tt.status/100 == 2 {
					_ = json.NewEncoder(w).Encode(wire.HostDeclarationResponse{})
					return
				}
				_ = json.NewEncoder(w).Encode(wire.ErrorResponse{Error: "the agent's reason"})
			}))
			if tt.closed {
				srv.Close()
			} else {
				defer srv.Close()
			}
			_, err := New(srv.URL, "tok", srv.Client()).DeclareHost(t.Context(), wire.HostDeclaration{})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("DeclareHost: %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("DeclareHost: %v, want %v", err, tt.want)
			}
			for name, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("DeclareHost: %v is also %s", err, name)
				}
			}
			if !tt.closed && !strings.Contains(err.Error(), "the agent's reason") {
				t.Errorf("DeclareHost: %q does not carry the agent's message", err)
			}
		})
	}
}
