package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netloom/netloom/internal/wire"
)

func TestWriteNodeFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := &wire.Container{Binds: []string{"r1/frr.conf:/etc/frr/frr.conf", "/abs:/abs:ro", "../shared:/opt/shared:ro"}}
	files := []wire.File{{Path: "r1/frr.conf", Data: []byte("hostname r1\n")}, {Path: "../shared/a", Data: []byte("a")}, {Path: "../shared/sub/b", Data: []byte("b")}}
	got, err := writeNodeFiles(dir, "lab", "r1", c, files)
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(dir, "nodes", "lab", "r1")
	want := []string{filepath.Join(node, "bind0", "frr.conf") + ":/etc/frr/frr.conf", "/abs:/abs:ro", filepath.Join(node, "bind2") + ":/opt/shared:ro"}
	for i := range want {
		if got.Binds[i] != want[i] {
			t.Errorf("binds[%d] %q, want %q", i, got.Binds[i], want[i])
		}
	}
	if c.Binds[0] != "r1/frr.conf:/etc/frr/frr.conf" {
		t.Errorf("the declared settings changed: %q", c.Binds[0])
	}
	for p, data := range map[string]string{"bind0/frr.conf": "hostname r1\n", "bind2/a": "a", "bind2/sub/b": "b"} {
		if b, err := os.ReadFile(filepath.Join(node, p)); err != nil || string(b) != data {
			t.Errorf("%s: %q, %v; want %q", p, b, err, data)
		}
	}
	if _, err := writeNodeFiles(dir, "lab", "r1", &wire.Container{Binds: []string{"missing:/m"}}, nil); err == nil {
		t.Error("a bind of a file not shipped: no error")
	}
	if _, err := writeNodeFiles(dir, "..", "r1", c, files); err == nil {
		t.Error("lab ..: no error")
	}
	if err := removeNodeFiles(dir, "lab", "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes", "lab")); !os.IsNotExist(err) {
		t.Errorf("the lab's folder is left: %v", err)
	}
}
