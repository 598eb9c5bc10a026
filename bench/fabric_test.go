package bench

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/fabric/ovs"
	"github.com/netloom/netloom/internal/testbed"
)

const tunnelCount = 1000

// freshHost builds an empty host outside the timer; the returned function
// removes it, also outside the timer.
func freshHost(b *testing.B) (*testbed.Host, func()) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	bed, h, err := NewHost(b.Context(), b.Name())
	if err != nil {
		b.Fatal(err)
	}
	return h, func() {
		b.StopTimer()
		defer b.StartTimer()
		if err := bed.Close(); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkDeclare1000Tunnels times the driver applying 1000 new VXLAN
// devices and their tagged, marked ports on an empty host, as one plan.
func BenchmarkDeclare1000Tunnels(b *testing.B) {
	plan := Plan(Tunnels(tunnelCount))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range b.N {
		h, done := freshHost(b)
		ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
		b.StopTimer()
		d, err := ovs.New(ctx, ovs.Config{OVSDB: h.OVSDB(), Bridge: Bridge, Netns: h.Netns}, log)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.Apply(ctx, plan); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Close()
		cancel()
		done()
	}
}

// BenchmarkBaseline1000Tunnels times the plain way for the same devices and
// ports (see Baseline).
func BenchmarkBaseline1000Tunnels(b *testing.B) {
	ts := Tunnels(tunnelCount)
	for range b.N {
		h, done := freshHost(b)
		if _, err := Baseline(b.Context(), h, ts); err != nil {
			b.Fatal(err)
		}
		done()
	}
}
