package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/wire"
)

// TestLabFiles: apply ships the files a lab names beside it — a file, a
// folder with everything below it, a startup-config, an env-file — and
// stops with a clear error at a missing or oversized one.
func TestLabFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("r1/frr.conf", "hostname r1\n")
	write("conf/a", "a")
	write("conf/sub/b", "b")
	write("vars.env", "A=1\n")
	write("unrelated", "x")
	lab := `name: f
topology:
  nodes:
    r1: {kind: frr, image: frr, startup-config: r1/frr.conf, binds: [conf:/etc/conf, /abs:/abs], env-files: [vars.env]}
    n1: {binds: [netns-node:/x]}
`
	file := filepath.Join(dir, "lab.yml")
	files, err := labFiles(file, []byte(lab))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k, v := range files {
		got = append(got, k+"="+string(v))
	}
	want := "conf/a=a conf/sub/b=b r1/frr.conf=hostname r1\n vars.env=A=1\n"
	if strings.Join(slices.Sorted(slices.Values(got)), " ") != want {
		t.Errorf("shipped %q, want %q", strings.Join(slices.Sorted(slices.Values(got)), " "), want)
	}

	if _, err := labFiles(file, []byte(strings.Replace(lab, "vars.env", "missing.env", 1))); err == nil || !strings.Contains(err.Error(), "names missing.env") {
		t.Errorf("a missing file: %v", err)
	}
	write("conf/big", strings.Repeat("x", wire.MaxFileSize+1))
	if _, err := labFiles(file, []byte(lab)); err == nil || !strings.Contains(err.Error(), "names conf/big: 1048577 bytes: a file shipped with a lab may have at most 1048576") {
		t.Errorf("an oversized file: %v", err)
	}
}
