package wire

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a request.
type Problem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists every problem found in a request.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Reason
	}
	return "invalid request: " + strings.Join(parts, "; ")
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
	Problems []Problem `json:"problems,omitempty"` // new: for 400s, each field and reason
}
