// Package internal_test holds the import rules of STYLE §2.1 as a test, so
// that a call against the one-way flow fails the build instead of a review.
package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/netloom/netloom"

// rule forbids packages under from to import packages under to, except the
// imports listed in allow.
type rule struct {
	from, to string
	allow    []string
	why      string
}

var rules = []rule{
	{from: "internal/ident", to: "", why: "ident imports only the standard library"},
	{from: "internal/wire", to: "", why: "wire imports only the standard library"},
	{from: "internal/controller", to: "internal/agent", allow: []string{"internal/agent/client"}, why: "the controller talks to agents only through agent/client"},
	{from: "internal/agent", to: "internal/controller", allow: []string{"internal/controller/client"}, why: "the agent never imports the controller"},
	{from: "internal/agent", to: "internal/store", why: "the agent never imports the store"},
	{from: "internal/fabric", to: "internal/agent", why: "drivers never import the agent"},
	{from: "internal/controller/client", to: "internal/store", why: "API clients speak the wire shapes, never the store's"},
	{from: "internal/agent/client", to: "internal/agent", allow: []string{"internal/agent/client"}, why: "the agent client knows only the wire"},
	{from: "internal/runtime", to: "internal/agent", why: "runtimes never import the agent"},
	{from: "internal/", to: "internal/testbed", allow: []string{"internal/testbed"}, why: "only tests, bench/ and the demo use the test bed"},
}

func TestImportRules(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], module+"/"), fields[1:]
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			checked++
			for _, imp := range imports {
				if bad(r, imp) {
					t.Errorf("%s imports %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule: the module path or the rules are wrong")
	}
}

// bad reports whether imp breaks r.
func bad(r rule, imp string) bool {
	if r.to == "" { // standard library only: no dot in the first element
		first, _, _ := strings.Cut(imp, "/")
		return strings.Contains(first, ".")
	}
	local, ok := strings.CutPrefix(imp, module+"/")
	if !ok || !under(local, r.to) {
		return false
	}
	for _, a := range r.allow {
		if under(local, a) {
			return false
		}
	}
	return true
}

// under reports whether pkg is dir or below it; a dir ending in "/" matches
// everything below it.
func under(pkg, dir string) bool {
	if strings.HasSuffix(dir, "/") {
		return strings.HasPrefix(pkg, dir)
	}
	return pkg == dir || strings.HasPrefix(pkg, dir+"/")
}
