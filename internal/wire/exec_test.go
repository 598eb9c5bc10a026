package wire

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidateExec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  ExecRequest
		node bool
		want []string // fields with problems
	}{
		{"a command", ExecRequest{Argv: []string{"ip", "addr"}}, false, nil},
		{"with its node", ExecRequest{LabID: "lab-1", Node: "r1", Argv: []string{"true"}}, true, nil},
		{"no command", ExecRequest{}, false, []string{"argv"}},
		{"an empty command", ExecRequest{Argv: []string{"", "x"}}, false, []string{"argv[0]"}},
		{"a NUL byte", ExecRequest{Argv: []string{"echo", "a\x00b"}}, false, []string{"argv[1]"}},
		{"too many words", ExecRequest{Argv: slices.Repeat([]string{"x"}, MaxExecArgs+1)}, false, []string{"argv"}},
		{"too long", ExecRequest{Argv: []string{"echo", strings.Repeat("x", MaxExecArgvBytes)}}, false, []string{"argv"}},
		{"no node for an agent", ExecRequest{LabID: "lab 1", Argv: []string{"true"}}, true, []string{"lab_id", "node"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fields(tt.req.Validate(tt.node)); !slices.Equal(got, tt.want) {
				t.Errorf("problems in %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadExecFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   string
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{"output then exit code", `{"stream":"stdout","data":"b3V0Cg=="}` + "\n" + `{"stream":"stderr","data":"ZXJyCg=="}` + "\n" + `{"exit_code":3}` + "\n",
			"stdout:out\nstderr:err\n", 3, ""},
		{"exit code 0", `{"exit_code":0}` + "\n", "", 0, ""},
		{"an error instead", `{"error":"exec in node r1: no such node"}` + "\n", "", -1, "exec in node r1: no such node"},
		{"cut short", `{"stream":"stdout","data":"b3V0Cg=="}` + "\n", "stdout:out\n", -1, ErrExecCut.Error()},
		{"not frames", "<html>\n", "", -1, "exec answer: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			code, err := ReadExecFrames(strings.NewReader(tt.answer), func(f ExecFrame) error {
				out.WriteString(f.Stream + ":" + string(f.Data))
				return nil
			})
			if code != tt.wantCode || out.String() != tt.wantOut || (err == nil) != (tt.wantErr == "") ||
				err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("exit %d, output %q, %v; want exit %d, output %q, error with %q", code, out.String(), err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if tt.name == "cut short" && !errors.Is(err, ErrExecCut) {
				t.Errorf("%v is not ErrExecCut", err)
			}
		})
	}
}

func TestExecFailureSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    ExecFailure
		want string
	}{
		{"first line of stderr", ExecFailure{Command: "ip addr add 10.0.0.1/33 dev eth1", ExitCode: 1,
			Stderr: "\nError: any valid prefix is expected rather than \"10.0.0.1/33\".\nmore\n"},
			`r1: "ip addr add 10.0.0.1/33 dev eth1": exit 1: Error: any valid prefix is expected rather than "10.0.0.1/33".`},
		{"stdout when stderr is silent", ExecFailure{Command: "test -e /x || echo missing; false", ExitCode: 1, Stdout: "missing\n"},
			`r1: "test -e /x || echo missing; false": exit 1: missing`},
		{"no output", ExecFailure{Command: "false", ExitCode: 1}, `r1: "false": exit 1`},
		{"did not run", ExecFailure{Command: "true", ExitCode: -1, Error: "exec in node r1: no such node\nsecond line"},
			`r1: "true": exec in node r1: no such node`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.f.Summary("r1"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// FuzzExecRequest decodes and validates arbitrary exec requests: no panic,
// and one that passes has a command of bounded size without NUL bytes.
func FuzzExecRequest(f *testing.F) {
	f.Add([]byte(`{"lab_id":"l","node":"r1","argv":["sh","-c","echo hi"]}`))
	f.Add([]byte(`{"argv":[""]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ExecRequest
		if json.Unmarshal(body, &req) != nil || req.Validate(true) != nil {
			return
		}
		if len(req.Argv) == 0 || len(req.Argv) > MaxExecArgs || req.Argv[0] == "" || len(strings.Join(req.Argv, "")) > MaxExecArgvBytes {
			t.Fatalf("accepted %q", req.Argv)
		}
	})
}

// FuzzReadExecFrames reads arbitrary answers: no panic, and an exit code
// only from a last frame that says one.
func FuzzReadExecFrames(f *testing.F) {
	f.Add([]byte(`{"stream":"stdout","data":"b3V0Cg=="}` + "\n" + `{"exit_code":3}` + "\n"))
	f.Add([]byte(`{"error":"x"}`))
	f.Fuzz(func(t *testing.T, answer []byte) {
		code, err := ReadExecFrames(strings.NewReader(string(answer)), func(ExecFrame) error { return nil })
		if err != nil && code != -1 {
			t.Fatalf("exit %d with error %v", code, err)
		}
	})
}
