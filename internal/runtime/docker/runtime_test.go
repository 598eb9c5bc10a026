package docker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/runtime/docker"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/testbed"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestConformance runs the runtime seam's contract against Docker: one bed
// with one host and a private daemon holding the BusyBox image; each case
// makes its nodes in a lab of its own.
func TestConformance(t *testing.T) {
	bed := testbed.Start(t)
	ctx := t.Context()
	h, err := bed.AddHost(ctx, "hostA", netip.MustParsePrefix("10.77.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := bed.StartDocker(ctx, "hostA")
	if err != nil {
		t.Fatal(err)
	}
	if err := dk.LoadImages(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	rt, err := docker.New(ctx, docker.Config{Socket: dk.Socket, HostNetns: h.Netns}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	runtimetest.RunConformance(t, func(t *testing.T) runtimetest.Harness {
		lab := fmt.Sprintf("%s%d", bed.ID(), n.Add(1))
		return runtimetest.Harness{Runtime: rt, Lab: lab, Image: "netloom/busybox:latest",
			Alive: func(node, pid string) bool {
				// A PID inside the container's own PID namespace: ask there.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				out, err := rt.Exec(ctx, lab, node, "kill -0 "+pid+" && echo alive")
				return err == nil && strings.Contains(out, "alive")
			}}
	})
}
