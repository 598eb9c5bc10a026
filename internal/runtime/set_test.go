package runtime_test

import (
	"errors"
	"slices"
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

// TestSetHostNode: the node named runtime.HostNode runs on the host runtime
// alone, image or not, and what the other runtimes report under that name
// is not it.
func TestSetHostNode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hostSpec := runtime.NodeSpec{Lab: "l", Name: runtime.HostNode, Interfaces: []runtime.InterfaceSpec{{Name: "veth1"}}}
	tests := []struct {
		name string
		spec runtime.NodeSpec
	}{
		{"plain", hostSpec},
		{"with an image", runtime.NodeSpec{Lab: "l", Name: runtime.HostNode, Image: "frr:9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plain, images, host := runtimetest.New(), runtimetest.New(), runtimetest.New()
			s := runtime.Set{Plain: plain, Images: images, Host: host}
			if _, err := s.CreateNode(ctx, tt.spec); err != nil {
				t.Fatal(err)
			}
			if plain.Dump() != "" || images.Dump() != "" || host.Dump() == "" {
				t.Errorf("plain %q, images %q, host %q: want the node on host only", plain.Dump(), images.Dump(), host.Dump())
			}
		})
	}

	plain, host := runtimetest.New(), runtimetest.New()
	s := runtime.Set{Plain: plain, Host: host}
	// A namespace made for a node named host before it was the host's.
	if _, err := plain.CreateNode(ctx, runtime.NodeSpec{Lab: "old", Name: runtime.HostNode}); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []runtime.NodeSpec{hostSpec, {Lab: "l", Name: "pc"}, {Lab: "l", Name: "hostx"}} {
		if _, err := s.CreateNode(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, n.Lab+"/"+n.Name)
	}
	if want := []string{"l/hostx", "l/pc", "l/host"}; !slices.Equal(got, want) {
		t.Errorf("List %v, want %v", got, want)
	}
	if _, err := runtimetest.Shell(ctx, s, "l", runtime.HostNode, "true"); err != nil || len(host.Execs()) != 1 || len(plain.Execs()) != 0 {
		t.Errorf("exec in host: %v; host ran %v, plain %v", err, host.Execs(), plain.Execs())
	}
	if err := s.DeleteNode(ctx, "old", runtime.HostNode); err != nil || !strings.Contains(plain.Dump(), "old/host") {
		t.Errorf("delete old/host: %v; plain %q: want it left to the plain runtime", err, plain.Dump())
	}
	if err := s.DeleteNode(ctx, "l", runtime.HostNode); err != nil || host.Dump() != "" {
		t.Errorf("delete l/host: %v; host %q", err, host.Dump())
	}

	none := runtime.Set{Plain: plain}
	if _, err := none.CreateNode(ctx, hostSpec); err == nil || plain.Dump() != "node l/hostx \nnode l/pc \nnode old/host " {
		t.Errorf("host node without a host runtime: %v; plain %q", err, plain.Dump())
	}
	if _, err := runtimetest.Shell(ctx, none, "old", runtime.HostNode, "true"); !errors.Is(err, runtime.ErrNoNode) {
		t.Errorf("exec in host without a host runtime: %v, want ErrNoNode", err)
	}
}
