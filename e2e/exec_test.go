package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
)

// TestExec runs `netloom exec` into a netns node on hostA and a container
// node on hostB (Docker), through their agents: stdout and stderr apart, the
// exit code passed through, --all prefixing each line with its node and
// naming the nodes it failed in. A lab whose exec line fails makes apply
// fail with one line naming node, command, exit code and the first line of
// stderr, while lab show LAB NODE shows the whole output. A node that is not
// is a 404 naming it, and an agent that does not answer is named with its
// host.
func TestExec(t *testing.T) {
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"},
		DockerHosts: []string{"hostB"}})
	lab := c.Bed.ID()
	path := c.Ctl.Dir + "/exec.yaml"
	if err := writeFile(path, fmt.Sprintf(`name: %s
topology:
  nodes:
    n1: {host: hostA, exec: ["ip addr add 10.7.1.1/24 dev eth1"]}
    n2: {host: hostA, exec: ["ip addr add 10.0.0.1/33 dev eth1", "echo fine"]}
    c1: {image: netloom/busybox:latest, host: hostB, exec: ["ip addr add 10.7.1.2/24 dev eth1"]}
  links:
    - endpoints: ["n1:eth1", "c1:eth1"]
    - endpoints: ["n2:eth1", "n1:eth2"]
`, lab)); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := c.RunCLI(t, "lab", "apply", "-f", path)
	want := `exec failed: n2: "ip addr add 10.0.0.1/33 dev eth1": exit 1: Error: any valid prefix is expected rather than "10.0.0.1/33".` + "\n"
	if code != 1 || !strings.Contains(errOut, want) || strings.Count(errOut, "exec failed: ") != 1 ||
		!strings.Contains(errOut, "exec commands failed in n2") || !strings.Contains(out, "1 exec command failed") {
		t.Errorf("apply with a failing exec line: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and on stderr %q", code, out, errOut, want)
	}
	t.Logf("apply:\n%s%s", out, errOut)
	out, errOut, code = c.RunCLI(t, "lab", "show", lab, "n2")
	t.Logf("lab show %s n2:\n%s", lab, out)
	if code != 0 || !strings.Contains(out, `exec failed: "ip addr add 10.0.0.1/33 dev eth1": exit 1`) ||
		!strings.Contains(out, "--- stderr\nError: any valid prefix is expected rather than \"10.0.0.1/33\".\n") {
		t.Errorf("lab show %s n2: exit %d\n%s%s", lab, code, out, errOut)
	}

	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string // each must appear
		exactly        string   // the whole stdout, when set
	}{
		{name: "netns node: streams apart, exit code passed through", args: []string{lab, "n1", "--", "sh", "-c", "echo out; echo err >&2; exit 3"},
			code: 3, exactly: "out\n", stderr: []string{"err\n"}},
		{name: "container node on the other host", args: []string{lab, "c1", "--", "sh", "-c", "echo out; echo err >&2; exit 3"},
			code: 3, exactly: "out\n", stderr: []string{"err\n"}},
		{name: "no shell between: words stay words", args: []string{lab, "n1", "--", "echo", "$HOME", "a  b"}, exactly: "$HOME a  b\n"},
		{name: "the container's own interfaces", args: []string{lab, "c1", "--", "ip", "-o", "-4", "addr", "show", "dev", "eth1"},
			stdout: []string{"10.7.1.2/24"}},
		{name: "traffic from netns node to container", args: []string{lab, "n1", "--", "ping", "-c", "1", "-W", "2", "10.7.1.2"},
			stdout: []string{"1 received"}},
		{name: "--all prefixes each line with its node", args: []string{lab, "--all", "--", "sh", "-c", "echo one; echo two"},
			stdout: []string{"[n1] one\n", "[n1] two\n", "[n2] one\n", "[c1] one\n", "[c1] two\n"}},
		{name: "--all names the nodes it failed in", args: []string{lab, "--all", "--", "ip", "link", "show", "eth2"},
			code: 1, stdout: []string{"[n1] "}, stderr: []string{"[n2] Device \"eth2\" does not exist.\n", "exec failed in 2 of 3 nodes: c1 (exit 2), n2 (exit 1)"}},
		{name: "a node that is not", args: []string{lab, "r9", "--", "true"}, code: 1, stderr: []string{"lab " + lab + ": node r9: not found"}},
		{name: "a command that is not", args: []string{lab, "n1", "--", "no-such-command"}, code: 1,
			stderr: []string{`exec of "no-such-command" failed: No such file or directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := c.RunCLI(t, append([]string{"exec"}, tt.args...)...)
			bad := code != tt.code || tt.exactly != "" && out != tt.exactly
			for _, s := range tt.stdout {
				bad = bad || !strings.Contains(out, s)
			}
			for _, s := range tt.stderr {
				bad = bad || !strings.Contains(errOut, s)
			}
			if bad {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout %q (or with %q), stderr with %q", code, out, errOut, tt.code, tt.exactly, tt.stdout, tt.stderr)
			}
		})
	}

	t.Run("ctrl-c ends the command in the node", func(t *testing.T) {
		tok := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tok, []byte(c.APIToken), 0o600); err != nil {
			t.Fatal(err)
		}
		cli := exec.CommandContext(t.Context(), "ip", "netns", "exec", c.Ctl.Netns, netloomBin, "exec",
			"--controller", testbed.ControllerURL, "--token-file", tok, lab, "n1", "--", "sh", "-c", "echo first; sleep 60; echo never")
		stdout, err := cli.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "first\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		if err := cli.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if err := cli.Wait(); err == nil {
			t.Error("an interrupted exec exited 0")
		}
		ns := ident.NamespaceName(lab, "n1")
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := testbed.ExecIn(t.Context(), c.Hosts["hostA"].Netns, "ip", "netns", "pids", ns)
			if err == nil && strings.TrimSpace(out) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("processes %q (%v) still run in %s after exec was interrupted", out, err, ns)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	if err := c.Agents["hostA"].Kill(); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = c.RunCLI(t, "exec", lab, "n1", "--", "true")
	t.Logf("exec with hostA's agent down: %s", errOut)
	if code != 1 || !strings.Contains(errOut, "agent does not answer on host hostA") {
		t.Errorf("exec on a host whose agent is down: exit %d, %q", code, errOut)
	}
}
