package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCompletion completes lab names through cobra's hidden __complete
// command, as a shell asks, against a controller on SQLite; a controller
// that does not answer gives no completions and no error.
func TestCompletion(t *testing.T) {
	_, srv := serveController(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	_ = os.WriteFile(tok, []byte("api-secret-token-for-tests\n"), 0o600)
	lab := filepath.Join(dir, "lab.yaml")
	_ = os.WriteFile(lab, []byte("name: cli\ntopology:\n  nodes: {r1: {}, r2: {}}\n  links:\n    - endpoints: [r1:eth1, r2:eth1]\n"), 0o644)
	conn := []string{"--controller", srv.URL, "--token-file", tok}
	// With no host online the lab is stored, stopped: enough to complete.
	if _, errOut, code := run(t, nil, append([]string{"lab", "apply", "-f", lab}, conn...)...); code != 1 || !strings.Contains(errOut, "no host is online") {
		t.Fatalf("apply: exit %d, %s", code, errOut)
	}
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	// The word being completed comes last, after any flags, as shells ask.
	complete := func(words ...string) []string {
		last := len(words) - 1
		return append(append(append([]string{"__complete"}, words[:last]...), conn...), words[last])
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // the completions, in order
	}{
		{"lab show", nil, complete("lab", "show", ""), []string{"cli\tstopped"}},
		{"lab destroy by prefix", nil, complete("lab", "destroy", "c"), []string{"cli\tstopped"}},
		{"link ls", nil, complete("link", "ls", ""), []string{"cli\tstopped"}},
		{"no lab with the prefix", nil, complete("lab", "show", "x"), nil},
		{"lab show LAB NODE: the lab's nodes", nil, complete("lab", "show", "cli", ""), []string{"r1\tlinux", "r2\tlinux"}},
		{"only one lab argument", nil, complete("lab", "destroy", "cli", ""), nil},
		{"env twins", map[string]string{"NETLOOM_CONTROLLER": srv.URL, "NETLOOM_TOKEN_FILE": tok}, []string{"__complete", "lab", "show", ""}, []string{"cli\tstopped"}},
		{"no token file", nil, []string{"__complete", "lab", "show", "--controller", srv.URL, "--token-file", "/nonexistent", ""}, nil},
		{"wrong token", nil, []string{"__complete", "lab", "show", "--controller", srv.URL, "--token-file", lab, ""}, nil},
		{"controller down", nil, []string{"__complete", "lab", "show", "--controller", down.URL, "--token-file", tok, ""}, nil},
		{"controller hangs", nil, []string{"__complete", "lab", "show", "--controller", hang.URL, "--token-file", tok, "--timeout", "200ms", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.env, tt.args...)
			got, directive := splitCompletions(out)
			if code != 0 || directive != ":4" || !sameLines(got, tt.want) || strings.Contains(errOut, "netloom:") {
				t.Fatalf("exit %d, completions %q, directive %q, stderr %q; want %q, :4 (no files)", code, got, directive, errOut, tt.want)
			}
		})
	}

	// A command that takes LAB NODE, as exec does, completes both.
	nodeTests := []struct {
		name string
		args []string
		want []string
	}{
		{"lab first", []string{""}, []string{"cli\tstopped"}},
		{"then its nodes", []string{"cli", ""}, []string{"r1\tlinux", "r2\tlinux"}},
		{"nodes by prefix", []string{"cli", "r2"}, []string{"r2\tlinux"}},
		{"no such lab", []string{"nope", ""}, nil},
		{"nothing after the node", []string{"cli", "r1", ""}, nil},
	}
	for _, tt := range nodeTests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootCmd()
			o := &clientOptions{}
			probe := &cobra.Command{Use: "probe LAB NODE", ValidArgsFunction: completeNodes(o), RunE: func(*cobra.Command, []string) error { return nil }}
			o.register(probe)
			root.AddCommand(probe)
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&bytes.Buffer{})
			root.SetArgs(complete(append([]string{"probe"}, tt.args...)...))
			if err := root.ExecuteContext(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, directive := splitCompletions(out.String()); !sameLines(got, tt.want) || directive != ":4" {
				t.Fatalf("completions %q, directive %q; want %q", got, directive, tt.want)
			}
		})
	}
}

// TestCompletionScripts: netloom completion writes each shell's script.
func TestCompletionScripts(t *testing.T) {
	tests := []struct{ shell, want string }{
		{"bash", "__start_netloom"},
		{"zsh", "#compdef netloom"},
		{"fish", "complete -c netloom"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			out, errOut, code := run(t, nil, "completion", tt.shell)
			if code != 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, stderr %q, stdout lacks %q", code, errOut, tt.want)
			}
		})
	}
}

// splitCompletions splits __complete's answer into its completions and the
// directive line that ends it.
func splitCompletions(out string) ([]string, string) {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 {
		return nil, ""
	}
	last := len(lines) - 1
	if last == 0 {
		return nil, lines[0]
	}
	return lines[:last], lines[last]
}

func sameLines(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
