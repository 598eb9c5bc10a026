package ovs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestModelsGenerated regenerates the vswitchd models from the schema copy
// beside them and fails on any difference: nothing there is edited by hand.
func TestModelsGenerated(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", "tool", "modelgen", "-p", "vswitchd", "-o", out, filepath.Join("vswitchd", "vswitch.ovsschema"))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("modelgen: %v\n%s", err, msg)
	}
	generated, err := filepath.Glob(filepath.Join(out, "*.go"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("modelgen wrote no files (%v)", err)
	}
	committed, err := filepath.Glob(filepath.Join("vswitchd", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) != len(generated)+1 { // + gen.go
		t.Errorf("vswitchd holds %d Go files, modelgen makes %d plus gen.go", len(committed), len(generated))
	}
	for _, g := range generated {
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("vswitchd", filepath.Base(g)))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./internal/fabric/ovs/vswitchd)", filepath.Base(g), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vswitchd/%s differs from what modelgen makes: run go generate ./internal/fabric/ovs/vswitchd", filepath.Base(g))
		}
	}
}
