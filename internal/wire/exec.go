package wire

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of a command run in a node.
const (
	MaxExecArgs      = 256
	MaxExecArgvBytes = 64 << 10
	// MaxExecOutput bounds each stream of an exec failure the agent reports:
	// the first bytes hold what explains it.
	MaxExecOutput = 16 << 10
)

// Names of the streams of ExecFrame.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// ExecContentType is the type of an exec's answer: one JSON ExecFrame per
// line.
const ExecContentType = "application/x-ndjson"

// ExecRequest runs a command in a node (new): POST /host/exec on the agent,
// with LabID and Node; POST /api/v1/labs/{lab}/nodes/{node}/exec on the
// controller, which takes them from the path. Argv runs as it is, with no
// shell unless it names one.
type ExecRequest struct {
	LabID string   `json:"lab_id,omitempty"`
	Node  string   `json:"node,omitempty"`
	Argv  []string `json:"argv"`
}

// Validate checks the command; with node, also the lab and node an agent
// needs.
func (r *ExecRequest) Validate(node bool) error {
	var ps problems
	if node {
		checkLab(&ps, "lab_id", r.LabID)
		checkNode(&ps, "node", r.Node)
	}
	checkArgv(&ps, r.Argv)
	return ps.err()
}

func checkArgv(ps *problems, argv []string) {
	switch {
	case len(argv) == 0:
		ps.add("argv", "empty: want a command")
		return
	case len(argv) > MaxExecArgs:
		ps.add("argv", "%d words: want at most %d", len(argv), MaxExecArgs)
	case argv[0] == "":
		ps.add("argv[0]", "empty: want a command")
	}
	n := 0
	for i, a := range argv {
		n += len(a)
		if strings.ContainsRune(a, 0) {
			ps.add(fmt.Sprintf("argv[%d]", i), "holds a NUL byte")
		}
	}
	if n > MaxExecArgvBytes {
		ps.add("argv", "%d bytes: want at most %d", n, MaxExecArgvBytes)
	}
}

// ExecFrame is one line of an exec's answer: output as it came, then one
// last frame with the command's exit code, or with the error that kept it
// from running to its end.
type ExecFrame struct {
	Stream   string `json:"stream,omitempty"` // StreamStdout or StreamStderr
	Data     []byte `json:"data,omitempty"`   // base64 in JSON: output need not be text
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ErrExecCut is an exec answer that ended without its last frame.
var ErrExecCut = errors.New("the answer ended before the command did")

// ReadExecFrames reads an exec's answer, calling out for each output frame
// as it arrives, and returns the command's exit code. The last frame's
// Error, or an answer cut short, is an error.
func ReadExecFrames(r io.Reader, out func(ExecFrame) error) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var f ExecFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return -1, fmt.Errorf("exec answer: %w", err)
		}
		switch {
		case f.Error != "":
			return -1, errors.New(f.Error)
		case f.ExitCode != nil:
			return *f.ExitCode, nil
		}
		if err := out(f); err != nil {
			return -1, err
		}
	}
	if err := sc.Err(); err != nil {
		return -1, fmt.Errorf("%w: %w", ErrExecCut, err)
	}
	return -1, ErrExecCut
}

// ExecFailure is an exec command of a lab file that failed when its node
// was made (new): its exit code (-1 when it did not run to its end, and
// Error says why) and its output, each stream cut at MaxExecOutput.
type ExecFailure struct {
	Command  string `json:"command"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	Stdout   string `json:"stdout,omitempty"`
	Stderr   string `json:"stderr,omitempty"`
}

// Summary is the failure in one line: node, command, exit code and the
// first line that explains it (of stderr, else of stdout).
func (f ExecFailure) Summary(node string) string {
	s := fmt.Sprintf("%s: %q: ", node, f.Command)
	if f.Error != "" {
		return s + firstLine(f.Error)
	}
	s += fmt.Sprintf("exit %d", f.ExitCode)
	if l := cmp.Or(firstLine(f.Stderr), firstLine(f.Stdout)); l != "" {
		s += ": " + l
	}
	return s
}

func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
