package main

import (
	"testing"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// TestHostStatus: host ls says why and since when a host is degraded.
func TestHostStatus(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		h    wire.HostView
		want string
	}{
		{"online", wire.HostView{Status: "online"}, "online"},
		{"offline", wire.HostView{Status: "offline"}, "offline"},
		{"degraded", wire.HostView{Status: "degraded", StatusReason: "no answer in 5s", DegradedSince: &since},
			"degraded: no answer in 5s since 2026-01-02T03:04:05Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := hostStatus(tt.h); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
