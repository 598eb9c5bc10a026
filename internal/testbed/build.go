package testbed

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildNetloom builds the netloom binary into a temporary folder, for tests
// that run it as a process; remove the folder with the returned function.
// Call it once per package, from TestMain.
func BuildNetloom() (path string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "netloom-bin")
	if err != nil {
		return "", nil, err
	}
	remove = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "netloom")
	out, err := exec.Command("go", "build", "-o", path, "github.com/netloom/netloom/cmd/netloom").CombinedOutput()
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("go build netloom: %w\n%s", err, out)
	}
	return path, remove, nil
}

// RunWithNetloom builds the netloom binary into *bin, runs the tests (m is
// the package's *testing.M) and removes the binary: the whole TestMain of a
// package whose tests run netloom processes. Under -short it builds
// nothing: the tests that would run the binary skip in Start.
func RunWithNetloom(m interface{ Run() int }, bin *string) int {
	if !flag.Parsed() {
		flag.Parse() // m.Run would, but -short must be known first
	}
	if short() {
		return m.Run()
	}
	path, remove, err := BuildNetloom()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	*bin = path
	return m.Run()
}
