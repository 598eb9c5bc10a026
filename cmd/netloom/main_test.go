package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// run executes the root command in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	code = exitCode(cmd.ExecuteContext(t.Context()), &errb)
	return out.String(), errb.String(), code
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantOut    string // substring of stdout
		wantErrSub string // substring of stderr
	}{
		{name: "version", args: []string{"version"}, wantOut: "netloom " + version + " ("},
		{name: "version json", args: []string{"version", "-o", "json"}, wantOut: `"version": "` + version + `"`},
		{name: "env twin", env: map[string]string{"NETLOOM_OUTPUT": "json"}, args: []string{"version"}, wantOut: `"go_version"`},
		{name: "flag beats env", env: map[string]string{"NETLOOM_OUTPUT": "json"}, args: []string{"version", "-o", "table"}, wantOut: "netloom " + version},
		{name: "bad output", args: []string{"version", "-o", "yaml"}, wantCode: 2, wantErrSub: `--output: "yaml" is not one of table, json`},
		{name: "bad env output", env: map[string]string{"NETLOOM_OUTPUT": "xml"}, args: []string{"version"}, wantCode: 2, wantErrSub: "--output"},
		{name: "unknown flag", args: []string{"version", "--bogus"}, wantCode: 2, wantErrSub: "unknown flag: --bogus"},
		{name: "extra argument", args: []string{"version", "extra"}, wantCode: 2, wantErrSub: `unknown command "extra"`},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantErrSub: `unknown command "frobnicate"`},
		{name: "no command", args: []string{}, wantCode: 2, wantErrSub: "a command is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErrSub) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.wantErrSub)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	dataIP := fs.String("data-ip", "", "")
	listen := fs.String("listen", ":7401", "")
	if err := fs.Parse([]string{"--listen", ":9000"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NETLOOM_DATA_IP": "10.77.0.1", "NETLOOM_LISTEN": ":1"}
	if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if *dataIP != "10.77.0.1" || *listen != ":9000" {
		t.Fatalf("data-ip %q listen %q, want 10.77.0.1 and :9000", *dataIP, *listen)
	}
}

// TestBinary runs the built binary as a user would and checks its exit codes.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the netloom binary: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "netloom")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		args     []string
		wantCode int
		check    func(t *testing.T, stdout, stderr string)
	}{
		{[]string{"version", "-o", "json"}, 0, func(t *testing.T, stdout, _ string) {
			var v versionInfo
			if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.Version != version {
				t.Errorf("version json %q: %v", stdout, err)
			}
		}},
		{[]string{"nope"}, 2, func(t *testing.T, _, stderr string) {
			if !strings.HasPrefix(stderr, "netloom: unknown command") || strings.Count(stderr, "\n") > 40 {
				t.Errorf("stderr %q", stderr)
			}
		}},
		{[]string{"version", "--output=csv"}, 2, func(t *testing.T, _, stderr string) {
			if stderr != "netloom: --output: \"csv\" is not one of table, json\n" {
				t.Errorf("stderr %q", stderr)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, tt.args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, errb.String())
			}
			tt.check(t, out.String(), errb.String())
		})
	}
}

func TestAgentFlags(t *testing.T) {
	dir := t.TempDir()
	tok, short, open := filepath.Join(dir, "token"), filepath.Join(dir, "short"), filepath.Join(dir, "open")
	sock := filepath.Join(t.TempDir(), "docker.sock") // nothing listens there
	for file, f := range map[string]struct {
		data string
		mode os.FileMode
	}{tok: {"secret-agent-token\n", 0o600}, short: {"secret\n", 0o600}, open: {"secret-agent-token\n", 0o644}} {
		if err := os.WriteFile(file, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no token file", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1"}, 2, "--token-file: required"},
		{"bad data ip and controller", []string{"agent", "--name", "h", "--data-ip", "hostA", "--controller", "10.0.0.9:7400", "--token-file", tok}, 2, "data-ip \"hostA\""},
		{"missing token file", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1", "--token-file", tok + "x"}, 1, "--token-file: open " + tok + "x: no such file"},
		{"short token", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1", "--token-file", short}, 1, "--token-file: " + short + " holds a token of 6 bytes: want at least 16"},
		{"token file others read", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1", "--token-file", open, "--runtimes", "docker", "--docker-socket", sock}, 1,
			"token file readable by others: chmod 600 it"},
		{"controller without its api token", []string{"controller", "--agent-token-file", tok}, 2, "--api-token-file: required"},
		{"bad log level", []string{"agent", "--log-level", "loud"}, 2, "--log-level"},
		{"unknown runtime", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1", "--token-file", tok, "--runtimes", "netns,lxc"}, 2, `unknown runtime "lxc"`},
		{"docker without a socket", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1", "--token-file", tok, "--runtimes", "docker", "--docker-socket", ""}, 2, "--docker-socket is empty"},
		{"docker that does not answer", []string{"agent", "--name", "h", "--data-ip", "10.0.0.1", "--token-file", tok, "--runtimes", "netns,docker", "--docker-socket", sock}, 1, "--runtimes docker: docker at " + sock + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d stderr %q; want %d and %q", code, errOut, tt.code, tt.wantErr)
			}
			if strings.Contains(errOut, "secret") {
				t.Error("the token reached the output")
			}
		})
	}
}

// TestDemo runs `netloom demo` as a user would and checks that it proves
// traffic, shows a repair and leaves nothing behind.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, OVS and namespaces: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "netloom")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"r1 -> r2 over the same-host link: 3/3", "r2 -> r3 over the VXLAN tunnel between the hosts: 3/3",
		"(must fail): 0/3", "repaired by hostB's agent without the controller", "nothing left"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`\(bed (nlt[0-9a-f]{6})\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no bed id in the output")
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), string(m[1])) || strings.HasPrefix(e.Name(), "nl-netloom-demo-") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if _, err := os.Stat("/run/netloom-testbed/" + string(m[1])); err == nil {
		t.Error("the demo's folder was left behind")
	}
}
