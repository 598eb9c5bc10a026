package runtime_test

import (
	"context"
	"testing"

	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
)

type watching struct{ *runtimetest.Fake }

func (watching) Watch(context.Context, func(runtime.Event)) error { return nil }

// TestSetWatchers: a set exposes the runtimes of its that report events,
// and only those.
func TestSetWatchers(t *testing.T) {
	t.Parallel()
	w := watching{runtimetest.New()}
	tests := []struct {
		name string
		set  runtime.Set
		want int
	}{
		{"plain only", runtime.Set{Plain: runtimetest.New()}, 0},
		{"images without events", runtime.Set{Plain: runtimetest.New(), Images: runtimetest.New()}, 0},
		{"images with events", runtime.Set{Plain: runtimetest.New(), Images: w}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.set.Watchers(); len(got) != tt.want {
				t.Errorf("%d watchers, want %d", len(got), tt.want)
			}
		})
	}
}
