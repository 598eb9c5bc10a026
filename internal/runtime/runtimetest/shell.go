package runtimetest

import (
	"context"
	"fmt"
	"strings"

	"github.com/netloom/netloom/internal/runtime"
)

// Shell runs cmd with sh inside a node and returns its output, stdout and
// stderr together; a command that exits non-zero is an error that holds
// the output.
func Shell(ctx context.Context, r runtime.Runtime, lab, node, cmd string) (string, error) {
	var out strings.Builder
	code, err := r.Exec(ctx, lab, node, []string{"sh", "-c", cmd}, &out, &out)
	if err != nil {
		return out.String(), err
	}
	if code != 0 {
		return out.String(), fmt.Errorf("exec %q in node %s: exit status %d: %s", cmd, node, code, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
