package wire

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a request, at a position in the file it
// came from when it came from one (Line 0 otherwise).
type Problem struct {
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// String gives the problem as compilers do, "file:line:col: field: reason",
// with as much of the position as it has.
func (p Problem) String(file string) string {
	pos := ""
	switch {
	case p.Line == 0:
	case file == "":
		pos = fmt.Sprintf("line %d", p.Line)
	default:
		pos = fmt.Sprintf("%s:%d", file, p.Line)
	}
	if pos != "" && p.Column > 0 {
		pos += fmt.Sprintf(":%d", p.Column)
	}
	if pos != "" {
		pos += ": "
	}
	return pos + p.Field + ": " + p.Reason
}

// FormatProblems writes what is wrong, one problem on each line after the
// headline, so that each reads on its own and an editor can jump to it;
// a single problem stays on the headline.
func FormatProblems(headline, file string, ps []Problem) string {
	if len(ps) == 1 {
		return headline + ": " + ps[0].String(file)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems", headline, len(ps))
	for _, p := range ps {
		b.WriteString("\n" + p.String(file))
	}
	return b.String()
}

// ValidationError lists every problem found in a request.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	return FormatProblems("invalid request", "", e.Problems)
}

// problems collects Problems while a validator walks a request.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// maxProblems bounds what one error lists: a request with a hundred
// thousand bad entries gets the first hundred and a count.
const maxProblems = 100

// err returns nil when nothing was added.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	if len(ps) > maxProblems {
		more := len(ps) - maxProblems
		ps = append(ps[:maxProblems:maxProblems], Problem{Field: "request", Reason: fmt.Sprintf("%d more problems not listed", more)})
	}
	return &ValidationError{Problems: ps}
}

// ErrorResponse is the body of every failed request.
type ErrorResponse struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"` // for 400s, each field and reason, with its position in a lab file
}
