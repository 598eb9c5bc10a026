package runtime_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
)

// TestSet: a node runs on the runtime for it, and is found on it again.
func TestSet(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	plain, images := runtimetest.New(), runtimetest.New()
	s := runtime.Set{Plain: plain, Images: images}
	if _, err := s.CreateNode(ctx, runtime.NodeSpec{Lab: "l", Name: "pc", Interfaces: []runtime.InterfaceSpec{{Name: "eth1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNode(ctx, runtime.NodeSpec{Lab: "l", Name: "rt", Image: "frr:9"}); err != nil {
		t.Fatal(err)
	}
	if plain.Dump() != "node l/pc eth1" || images.Dump() != "node l/rt " {
		t.Errorf("plain %q, images %q: want pc on plain and rt on images", plain.Dump(), images.Dump())
	}
	if nodes, err := s.List(ctx); err != nil || len(nodes) != 2 {
		t.Errorf("List %+v, %v: want both nodes", nodes, err)
	}
	for _, node := range []string{"pc", "rt"} {
		if _, err := runtimetest.Shell(ctx, s, "l", node, "true"); err != nil {
			t.Errorf("exec in %s: %v", node, err)
		}
	}
	if _, err := runtimetest.Shell(ctx, s, "l", "nope", "true"); !errors.Is(err, runtime.ErrNoNode) {
		t.Errorf("exec in a node nobody runs: %v, want ErrNoNode", err)
	}
	if err := s.DeleteNode(ctx, "l", "rt"); err != nil || images.Dump() != "" || plain.Dump() == "" {
		t.Errorf("delete rt: %v; plain %q, images %q", err, plain.Dump(), images.Dump())
	}
	none := runtime.Set{Plain: plain}
	if _, err := none.CreateNode(ctx, runtime.NodeSpec{Lab: "l", Name: "rt", Image: "frr:9"}); err == nil || !strings.Contains(err.Error(), "no container runtime") {
		t.Errorf("an image on a host without a container runtime: %v", err)
	}
}

// TestSetContainersOnly: a host that offers only containers refuses a node
// without an image, and still runs and finds the others.
func TestSetContainersOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	images := runtimetest.New()
	s := runtime.Set{Images: images}
	if _, err := s.CreateNode(ctx, runtime.NodeSpec{Lab: "l", Name: "pc"}); err == nil || !strings.Contains(err.Error(), "only containers") {
		t.Errorf("a node without an image: %v, want an error", err)
	}
	if _, err := s.CreateNode(ctx, runtime.NodeSpec{Lab: "l", Name: "rt", Image: "frr:9"}); err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.List(ctx); err != nil || len(nodes) != 1 {
		t.Errorf("List %+v, %v: want rt", nodes, err)
	}
	if _, err := runtimetest.Shell(ctx, s, "l", "pc", "true"); !errors.Is(err, runtime.ErrNoNode) {
		t.Errorf("exec in a node nobody runs: %v, want ErrNoNode", err)
	}
	if err := s.DeleteNode(ctx, "l", "rt"); err != nil || images.Dump() != "" {
		t.Errorf("delete rt: %v; images %q", err, images.Dump())
	}
}
