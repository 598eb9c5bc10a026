package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

func newLabCmd(root *rootOptions) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{Use: "lab", Short: "Apply, inspect and destroy labs", Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("lab: a subcommand is required (apply, destroy, ls, show)")
		}}
	o.register(cmd)
	cmd.AddCommand(newLabApplyCmd(root, o), newLabDestroyCmd(root, o), newLabLsCmd(root, o), newLabShowCmd(root, o))
	return cmd
}

// labFiles reads the files a lab names beside it on this machine
// (relative bind sources, startup-configs, env-files; a directory with every
// file below it), so that hosts that run its nodes get them. A lab the
// topology rejects is left to the controller to explain.
func labFiles(file string, data []byte) (map[string][]byte, error) {
	lab, err := topology.Decode(filepath.Base(file), data)
	if err != nil {
		return nil, nil // the controller reports its problems, with their positions
	}
	dir := filepath.Dir(file)
	files := map[string][]byte{}
	total := 0
	add := func(key, p string) error {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("lab file %s names %s: %w", file, key, err)
		}
		if len(data) > wire.MaxFileSize {
			return fmt.Errorf("lab file %s names %s: %d bytes: a file shipped with a lab may have at most %d (1 MiB); bind a file already on the host by its absolute path instead",
				file, key, len(data), wire.MaxFileSize)
		}
		if total += len(data); total > wire.MaxFilesSize {
			return fmt.Errorf("lab file %s: the files it names exceed %d bytes (3 MiB) in all; bind large files by absolute paths on the hosts", file, wire.MaxFilesSize)
		}
		files[key] = data
		return nil
	}
	for _, ref := range lab.Refs() {
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, ref)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("lab file %s names %s: %w", file, ref, err)
		}
		if !fi.IsDir() {
			if err := add(ref, p); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(p, q)
			if err != nil {
				return err
			}
			return add(path.Join(ref, filepath.ToSlash(rel)), q)
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

func newLabApplyCmd(root *rootOptions, o *clientOptions) *cobra.Command {
	var file string
	var plan, noWait bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update a lab from its file and deploy it (--plan: only show what would change)",
		Long: "Create or update a lab from its file and deploy it. The controller deploys in the background;\n" +
			"apply waits for it and shows its progress, unless --no-wait.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("-f: a lab file is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read lab file: %w", err)
			}
			files, err := labFiles(file, data)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.Apply(cmd.Context(), filepath.Base(file), data, files, plan)
			if err != nil {
				return err
			}
			for _, w := range resp.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if plan || noWait {
				if root.output == "json" {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				printPlan(cmd, resp, plan)
				return nil
			}
			if root.output == "table" {
				printPlan(cmd, resp, false)
			}
			v, err := c.WaitLab(cmd.Context(), resp.Lab, 250*time.Millisecond, progressPrinter(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			d := v.Result()
			resp.Deploy = &d
			if root.output == "json" {
				if err := printJSON(cmd.OutOrStdout(), resp); err != nil {
					return err
				}
				return deployErr(cmd.ErrOrStderr(), d)
			}
			return printDeploy(cmd, d)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "lab file (containerlab format, with host placement)")
	cmd.Flags().BoolVar(&plan, "plan", false, "print what would change, and where each node and link goes, and change nothing")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the controller took the lab, without waiting for the deploy")
	return cmd
}

// progressPrinter shows a deploy's progress: one line rewritten in place on
// a terminal, a plain line per change otherwise.
func progressPrinter(w io.Writer) func(wire.LabView) {
	tty := isTerminal(w)
	last := ""
	return func(v wire.LabView) {
		p := v.Progress
		line := fmt.Sprintf("lab %s: %s, nodes %d/%d, links %d/%d up", v.Name, v.State, p.NodesUp, p.Nodes, p.LinksUp, p.Links)
		switch {
		case line == last:
		case tty && v.State == "starting":
			fmt.Fprintf(w, "\r\033[K%s", line)
		case tty:
			fmt.Fprintf(w, "\r\033[K%s\n", line)
		default:
			fmt.Fprintln(w, line)
		}
		last = line
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printPlan prints what an apply changes; with where, also each node's
// host and each link's kind, else only the nodes that move.
func printPlan(cmd *cobra.Command, resp wire.ApplyResponse, where bool) {
	out := cmd.OutOrStdout()
	verb := "lab %s: "
	if resp.Created {
		verb = "lab %s (new): "
	}
	p := resp.Plan
	n := len(p.AddNodes) + len(p.RemoveNodes) + len(p.ChangeNodes) + len(p.AddLinks) + len(p.RemoveLinks)
	if n == 0 {
		fmt.Fprintf(out, verb+"no change\n", resp.Lab)
	} else {
		fmt.Fprintf(out, verb+"%d changes\n", resp.Lab, n)
	}
	remade := map[string]bool{}
	for _, r := range p.RemakeNodes {
		remade[r.Name] = true
	}
	changed := slices.DeleteFunc(slices.Clone(p.ChangeNodes), func(n string) bool { return remade[n] })
	for _, g := range []struct {
		sign, what string
		names      []string
	}{{"+", "node", p.AddNodes}, {"~", "node", changed}, {"-", "node", p.RemoveNodes}, {"+", "link", p.AddLinks}, {"-", "link", p.RemoveLinks}} {
		for _, name := range g.names {
			fmt.Fprintf(out, "  %s %s %s\n", g.sign, g.what, name)
		}
	}
	for _, r := range p.RemakeNodes {
		fmt.Fprintf(out, "  -/+ node %s: made again (%s)\n", r.Name, r.Reason)
	}
	for _, node := range p.Nodes {
		if where {
			fmt.Fprintf(out, "    node %s on %s\n", node.Name, orDash(node.Host))
		}
	}
	if !where {
		return
	}
	for _, l := range p.Links {
		if l.Kind == wire.KindTunnel {
			fmt.Fprintf(out, "    link %s: tunnel between %s and %s\n", l.Name, l.Hosts[0], l.Hosts[1])
			continue
		}
		fmt.Fprintf(out, "    link %s: same-host on %s\n", l.Name, orDash(strings.Join(l.Hosts, "")))
	}
}

// printDeploy shows how a deploy went and fails when anything failed.
func printDeploy(cmd *cobra.Command, d wire.DeployResponse) error {
	t := newTable(cmd.OutOrStdout(), "NODE", "HOST", "STATUS", "ERROR")
	for _, n := range d.Nodes {
		t.row(n.Name, n.Host, n.Status, nodeWhy(n.Error, len(n.ExecFailures)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	t = newTable(cmd.OutOrStdout(), "LINK", "STATE", "ERROR")
	for _, l := range d.Links {
		t.row(l.LinkName, l.Status, orDash(l.Error))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "lab %s is %s\n", d.Lab, d.State)
	return deployErr(cmd.ErrOrStderr(), d)
}

// deployErr fails a deploy that did not end running (or stopped), or whose
// exec commands failed: those it names on stderr, one line each.
func deployErr(stderr io.Writer, d wire.DeployResponse) error {
	var failed []string
	for _, n := range d.Nodes {
		for _, f := range n.ExecFailures {
			fmt.Fprintf(stderr, "exec failed: %s\n", f.Summary(n.Name))
		}
		if len(n.ExecFailures) > 0 {
			failed = append(failed, n.Name)
		}
	}
	if d.State != "running" && d.State != "stopped" {
		return fmt.Errorf("lab %s is %s: %s", d.Lab, d.State, d.Error)
	}
	if len(failed) > 0 {
		node := "NODE"
		if len(failed) == 1 {
			node = failed[0]
		}
		return fmt.Errorf("lab %s is %s, but exec commands failed in %s (lab show %s %s shows their output)",
			d.Lab, d.State, strings.Join(failed, ", "), d.Lab, node)
	}
	return nil
}

// nodeWhy is a node's error in a table: its own, else how many of its exec
// commands failed, whose output is too long for a table.
func nodeWhy(err string, execFailures int) string {
	switch {
	case err != "":
		return err
	case execFailures == 1:
		return "1 exec command failed"
	case execFailures > 1:
		return fmt.Sprintf("%d exec commands failed", execFailures)
	}
	return "-"
}

func newLabDestroyCmd(root *rootOptions, o *clientOptions) *cobra.Command {
	var del bool
	cmd := &cobra.Command{
		Use:               "destroy NAME",
		Short:             "Tear a lab down on every host (--delete: also forget it)",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeLabs(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			d, err := c.Destroy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if d.State == "stopped" && del {
				if err := c.Delete(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), d)
			}
			if d.State != "stopped" {
				return fmt.Errorf("lab %s is %s: %s", d.Lab, d.State, d.Error)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s destroyed\n", d.Lab)
			return nil
		},
	}
	cmd.Flags().BoolVar(&del, "delete", false, "also delete the lab from the controller")
	return cmd
}

func newLabLsCmd(root *rootOptions, o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List labs",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			labs, err := c.Labs(cmd.Context())
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), labs)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "STATE", "ERROR")
			for _, l := range labs {
				t.row(l.Name, l.State, orDash(l.StateError))
			}
			return t.flush()
		},
	}
}

func newLabShowCmd(root *rootOptions, o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:               "show NAME [NODE]",
		Short:             "Show a lab's nodes and links, or one node with the output of its failed exec commands",
		Args:              usageArgs(cobra.RangeArgs(1, 2)),
		ValidArgsFunction: completeNodes(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			v, err := c.Lab(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(args) == 2 {
				i := slices.IndexFunc(v.Nodes, func(n wire.Node) bool { return n.Name == args[1] })
				if i < 0 {
					return fmt.Errorf("lab %s has no node %s", v.Name, args[1])
				}
				if root.output == "json" {
					return printJSON(cmd.OutOrStdout(), v.Nodes[i])
				}
				printNode(cmd.OutOrStdout(), v.Nodes[i])
				return nil
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), v)
			}
			p := v.Progress
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s: %s, nodes %d/%d, links %d/%d up %s\n", v.Name, v.State, p.NodesUp, p.Nodes, p.LinksUp, p.Links, v.StateError)
			t := newTable(cmd.OutOrStdout(), "NODE", "KIND", "HOST", "MGMT", "RUNTIME ID", "STATUS", "VERIFIED", "ERROR")
			for _, n := range v.Nodes {
				t.row(n.Name, n.Kind, orDash(n.PlacedOn), orDash(n.MgmtAddress), orDash(n.RuntimeID), orDash(n.Status), ago(n.VerifiedAt),
					nodeWhy(n.Error, len(n.ExecFailures)))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if err := printLinks(cmd, v.Links); err != nil {
				return err
			}
			return printMgmt(cmd.OutOrStdout(), v)
		},
	}
}

// printMgmt shows a lab's management network: the host's address on it on
// each host, and how each host reaches the others.
func printMgmt(out io.Writer, v wire.LabView) error {
	if v.MgmtSubnet == "" {
		return nil
	}
	fmt.Fprintf(out, "management network %s:\n", v.MgmtSubnet)
	t := newTable(out, "HOST", "ADDRESS", "TAG", "TUNNEL", "VNI", "STATUS", "VERIFIED", "ERROR")
	for _, m := range v.Mgmt {
		tunnel := "hub"
		if m.Hub != "" {
			tunnel = "to " + m.Hub
		}
		t.row(m.Host, m.Address, fmt.Sprint(m.Tag), tunnel, intOrDash(m.VNI), orDash(m.Status), ago(m.VerifiedAt), orDash(m.Error))
	}
	return t.flush()
}

// printNode shows one node, with each failed exec command and its whole
// output.
func printNode(out io.Writer, n wire.Node) {
	fmt.Fprintf(out, "node %s: kind %s, host %s, runtime id %s, %s, verified %s\n",
		n.Name, orDash(n.Kind), orDash(n.PlacedOn), orDash(n.RuntimeID), orDash(n.Status), ago(n.VerifiedAt))
	if n.Image != "" {
		fmt.Fprintf(out, "image: %s\n", n.Image)
	}
	if n.MgmtAddress != "" {
		fmt.Fprintf(out, "management address: %s (eth0)\n", n.MgmtAddress)
	}
	if n.Error != "" {
		fmt.Fprintf(out, "error: %s\n", n.Error)
	}
	for _, cmd := range n.Exec {
		fmt.Fprintf(out, "exec: %s\n", cmd)
	}
	for _, f := range n.ExecFailures {
		fmt.Fprintf(out, "\nexec failed: %q: ", f.Command)
		if f.Error != "" {
			fmt.Fprintln(out, f.Error)
		} else {
			fmt.Fprintf(out, "exit %d\n", f.ExitCode)
		}
		for _, s := range []struct{ name, text string }{{"stdout", f.Stdout}, {"stderr", f.Stderr}} {
			if s.text == "" {
				continue
			}
			fmt.Fprintf(out, "--- %s\n%s", s.name, s.text)
			if !strings.HasSuffix(s.text, "\n") {
				fmt.Fprintln(out)
			}
		}
	}
}
