package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/wire"
)

// execParallel bounds how many nodes `exec --all` runs the command in at
// once.
const execParallel = 8

// exitError is a command's exit code passed through as netloom's own; it
// prints nothing more, the command said what it had to.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// execClient is what exec needs of the controller.
type execClient interface {
	Lab(ctx context.Context, lab string) (wire.LabView, error)
	Exec(ctx context.Context, lab, node string, argv []string, out func(wire.ExecFrame) error) (int, error)
}

func newExecCmd(_ *rootOptions) *cobra.Command {
	o := &clientOptions{}
	var all bool
	var labels []string
	cmd := &cobra.Command{
		Use:               "exec LAB [NODE] [--all | --label KEY=VALUE] -- CMD [ARG...]",
		ValidArgsFunction: completeNodes(o),
		Short:             "Run a command in a lab node, or in every node, wherever it runs",
		Long: "Run a command in a lab node (network namespace or container) through its host's agent,\n" +
			"with no shell unless the command is one. stdout and stderr stream as they come, and\n" +
			"netloom exits with the command's exit code. With --all (or --label), the command runs\n" +
			"in every node (or every node with the labels) of the lab, each line prefixed with\n" +
			"[node]; netloom exits 1 if it failed in any, and names them on stderr.\n" +
			"--timeout bounds the whole command here; by default it has none.",
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 || dash == len(args) {
				return fmt.Errorf("exec: the command goes after --, e.g. netloom exec lab1 r1 -- ip addr")
			}
			want := 2
			if all || len(labels) > 0 {
				want = 1
			}
			if dash != want {
				return fmt.Errorf("exec: want LAB and NODE before --, or LAB with --all or --label; got %d arguments", dash)
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			argv := args[dash:]
			match, err := labelFilter(labels)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("timeout") {
				o.timeout = 0 // a command may run as long as it likes
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if dash == 2 {
				return execOne(cmd.Context(), c, args[0], args[1], argv, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return execAll(cmd.Context(), c, args[0], match, argv, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "run the command in every node of the lab")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "run the command in every node with this label (KEY=VALUE; repeat to need several)")
	return cmd
}

// labelFilter matches the nodes that carry every KEY=VALUE label; none
// given matches all.
func labelFilter(labels []string) (func(wire.Node) bool, error) {
	want := map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, usagef("--label %q: want KEY=VALUE", l)
		}
		want[k] = v
	}
	return func(n wire.Node) bool {
		for k, v := range want {
			if n.Container == nil || n.Container.Labels[k] != v {
				return false
			}
		}
		return true
	}, nil
}

// execOne runs argv in one node, its output unchanged.
func execOne(ctx context.Context, c execClient, lab, node string, argv []string, stdout, stderr io.Writer) error {
	code, err := c.Exec(ctx, lab, node, argv, func(f wire.ExecFrame) error {
		w := stdout
		if f.Stream == wire.StreamStderr {
			w = stderr
		}
		_, err := w.Write(f.Data)
		return err
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code}
	}
	return nil
}

// execAll runs argv in every node of the lab that match accepts, a few at
// once, each line of output prefixed with its node.
func execAll(ctx context.Context, c execClient, lab string, match func(wire.Node) bool, argv []string, stdout, stderr io.Writer) error {
	v, err := c.Lab(ctx, lab)
	if err != nil {
		return err
	}
	var nodes []string
	for _, n := range v.Nodes {
		if match(n) {
			nodes = append(nodes, n.Name)
		}
	}
	if len(nodes) == 0 {
		return fmt.Errorf("lab %s has no node to run the command in", lab)
	}
	var mu sync.Mutex // one line at a time on each output
	failed := map[string]string{}
	sem := make(chan struct{}, execParallel)
	var wg sync.WaitGroup
	for _, node := range nodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out := &prefixWriter{mu: &mu, w: stdout, prefix: "[" + node + "] "}
			errOut := &prefixWriter{mu: &mu, w: stderr, prefix: "[" + node + "] "}
			code, err := c.Exec(ctx, lab, node, argv, func(f wire.ExecFrame) error {
				w := out
				if f.Stream == wire.StreamStderr {
					w = errOut
				}
				_, err := w.Write(f.Data)
				return err
			})
			out.flush()
			errOut.flush()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failed[node] = err.Error()
			case code != 0:
				failed[node] = fmt.Sprintf("exit %d", code)
			}
		})
	}
	wg.Wait()
	if len(failed) == 0 {
		return nil
	}
	var parts []string
	for _, node := range slices.Sorted(maps.Keys(failed)) {
		parts = append(parts, fmt.Sprintf("%s (%s)", node, failed[node]))
	}
	return fmt.Errorf("exec failed in %d of %d nodes: %s", len(failed), len(nodes), strings.Join(parts, ", "))
}

// prefixWriter writes whole lines, each prefixed, under a lock shared with
// the other nodes' writers; a partial line waits for its end or flush.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	i := bytes.LastIndexByte(p.buf, '\n')
	if i < 0 {
		return len(b), nil
	}
	err := p.emit(p.buf[:i+1])
	p.buf = slices.Delete(p.buf, 0, i+1)
	return len(b), err
}

// flush writes a last line that did not end.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		_ = p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}

func (p *prefixWriter) emit(lines []byte) error {
	var out bytes.Buffer
	for l := range bytes.Lines(lines) {
		out.WriteString(p.prefix)
		out.Write(l)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.w.Write(out.Bytes())
	return err
}
