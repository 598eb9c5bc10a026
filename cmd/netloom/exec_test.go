package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/wire"
)

// fakeExec answers as the controller would, for a lab of three nodes: each
// writes its name in frames that cut lines in two.
type fakeExec struct{}

func (fakeExec) Lab(_ context.Context, lab string) (wire.LabView, error) {
	return wire.LabView{Lab: wire.Lab{Name: lab}, Nodes: []wire.Node{
		{Name: "r1"}, {Name: "r2"},
		{Name: "c1", NodeSettings: wire.NodeSettings{Container: &wire.Container{Labels: map[string]string{"role": "edge"}}}},
	}}, nil
}

func (fakeExec) Exec(_ context.Context, _, node string, argv []string, out func(wire.ExecFrame) error) (int, error) {
	for _, f := range []wire.ExecFrame{
		{Stream: wire.StreamStdout, Data: []byte("hello ")},
		{Stream: wire.StreamStdout, Data: []byte("from " + node + "\nsecond")},
		{Stream: wire.StreamStderr, Data: []byte("warn\n")},
	} {
		if err := out(f); err != nil {
			return -1, err
		}
	}
	switch node {
	case "r2":
		return 2, nil
	case "c1":
		if argv[0] == "boom" {
			return -1, errors.New("host hostB: exec in node c1: no such node")
		}
	}
	return 0, nil
}

func TestExecAll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		labels         []string
		argv           []string
		stdout, stderr []string // sorted lines
		err            string
	}{
		{"every node, lines prefixed, a failure named", nil, []string{"true"},
			[]string{"[c1] hello from c1", "[c1] second", "[r1] hello from r1", "[r1] second", "[r2] hello from r2", "[r2] second"},
			[]string{"[c1] warn", "[r1] warn", "[r2] warn"}, "exec failed in 1 of 3 nodes: r2 (exit 2)"},
		{"by label", []string{"role=edge"}, []string{"true"},
			[]string{"[c1] hello from c1", "[c1] second"}, []string{"[c1] warn"}, ""},
		{"an error of the controller", []string{"role=edge"}, []string{"boom"},
			[]string{"[c1] hello from c1", "[c1] second"}, []string{"[c1] warn"},
			"exec failed in 1 of 1 nodes: c1 (host hostB: exec in node c1: no such node)"},
		{"no node with the label", []string{"role=core"}, []string{"true"}, nil, nil, "lab lab1 has no node to run the command in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			match, err := labelFilter(tt.labels)
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			err = execAll(t.Context(), fakeExec{}, "lab1", match, tt.argv, &stdout, &stderr)
			lines := func(s string) []string {
				l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
				slices.Sort(l)
				return slices.DeleteFunc(l, func(s string) bool { return s == "" })
			}
			if got := lines(stdout.String()); !slices.Equal(got, tt.stdout) {
				t.Errorf("stdout %q, want %q", got, tt.stdout)
			}
			if got := lines(stderr.String()); !slices.Equal(got, tt.stderr) {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			if (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestExecOne(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	err := execOne(t.Context(), fakeExec{}, "lab1", "r2", []string{"true"}, &stdout, &stderr)
	if ee, ok := errors.AsType[*exitError](err); !ok || ee.code != 2 {
		t.Errorf("error %v, want the command's exit code 2", err)
	}
	if stdout.String() != "hello from r2\nsecond" || stderr.String() != "warn\n" {
		t.Errorf("stdout %q, stderr %q: want them as they came", stdout.String(), stderr.String())
	}
}

func TestLabelFilterUsage(t *testing.T) {
	t.Parallel()
	for _, l := range []string{"role", "=edge"} {
		if _, err := labelFilter([]string{l}); !errors.As(err, new(*usageError)) {
			t.Errorf("--label %q: %v, want a usage error", l, err)
		}
	}
}

func TestDeployErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		d          wire.DeployResponse
		wantStderr string
		wantErr    string
	}{
		{"running, no failure", wire.DeployResponse{Lab: "l", State: "running", Nodes: []wire.NodeResult{{Name: "r1"}}}, "", ""},
		{"running with a failed exec line", wire.DeployResponse{Lab: "l", State: "running", Nodes: []wire.NodeResult{
			{Name: "r1", ExecFailures: []wire.ExecFailure{{Command: "ip addr add 10.0.0.1/33 dev eth1", ExitCode: 1,
				Stderr: "Error: any valid prefix is expected rather than \"10.0.0.1/33\".\n"}}}}},
			"exec failed: r1: \"ip addr add 10.0.0.1/33 dev eth1\": exit 1: Error: any valid prefix is expected rather than \"10.0.0.1/33\".\n",
			"lab l is running, but exec commands failed in r1 (lab show l r1 shows their output)"},
		{"failed", wire.DeployResponse{Lab: "l", State: "error", Error: "hostA: boom"}, "", "lab l is error: hostA: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			err := deployErr(&stderr, tt.d)
			if stderr.String() != tt.wantStderr || (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
				t.Errorf("stderr %q, error %v; want %q, %q", stderr.String(), err, tt.wantStderr, tt.wantErr)
			}
		})
	}
}
