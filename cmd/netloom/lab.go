package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

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

func newLabApplyCmd(root *rootOptions, o *clientOptions) *cobra.Command {
	var file string
	var plan bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update a lab from its file and deploy it (--plan: only show what would change)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("-f: a lab file is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read lab file: %w", err)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if !plan && root.output == "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "applying %s…\n", file)
			}
			resp, err := c.Apply(cmd.Context(), filepath.Base(file), data, plan)
			if err != nil {
				return err
			}
			for _, w := range resp.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			printPlan(cmd, resp)
			if resp.Deploy == nil {
				return nil
			}
			return printDeploy(cmd, *resp.Deploy)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "lab file (containerlab format, with host placement)")
	cmd.Flags().BoolVar(&plan, "plan", false, "print what would change and change nothing")
	return cmd
}

func printPlan(cmd *cobra.Command, resp wire.ApplyResponse) {
	out := cmd.OutOrStdout()
	verb := "lab %s: "
	if resp.Created {
		verb = "lab %s (new): "
	}
	p := resp.Plan
	n := len(p.AddNodes) + len(p.RemoveNodes) + len(p.ChangeNodes) + len(p.AddLinks) + len(p.RemoveLinks)
	if n == 0 {
		fmt.Fprintf(out, verb+"no change\n", resp.Lab)
		return
	}
	fmt.Fprintf(out, verb+"%d changes\n", resp.Lab, n)
	for _, g := range []struct {
		sign, what string
		names      []string
	}{{"+", "node", p.AddNodes}, {"~", "node", p.ChangeNodes}, {"-", "node", p.RemoveNodes}, {"+", "link", p.AddLinks}, {"-", "link", p.RemoveLinks}} {
		for _, name := range g.names {
			fmt.Fprintf(out, "  %s %s %s\n", g.sign, g.what, name)
		}
	}
}

// printDeploy shows how a deploy went and fails when anything failed.
func printDeploy(cmd *cobra.Command, d wire.DeployResponse) error {
	t := newTable(cmd.OutOrStdout(), "NODE", "HOST", "STATUS", "ERROR")
	for _, n := range d.Nodes {
		t.row(n.Name, n.Host, n.Status, orDash(strings.Join(append([]string{n.Error}, n.ExecErrors...), " ")))
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
	if d.State != "running" && d.State != "stopped" {
		return fmt.Errorf("lab %s is %s: %s", d.Lab, d.State, d.Error)
	}
	return nil
}

func newLabDestroyCmd(root *rootOptions, o *clientOptions) *cobra.Command {
	var del bool
	cmd := &cobra.Command{
		Use:   "destroy NAME",
		Short: "Tear a lab down on every host (--delete: also forget it)",
		Args:  usageArgs(cobra.ExactArgs(1)),
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
		Use:   "show NAME",
		Short: "Show a lab's nodes and links",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			v, err := c.Lab(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s: %s %s\n", v.Name, v.State, v.StateError)
			t := newTable(cmd.OutOrStdout(), "NODE", "KIND", "HOST", "RUNTIME ID", "STATUS")
			for _, n := range v.Nodes {
				t.row(n.Name, n.Kind, orDash(n.PlacedOn), orDash(n.RuntimeID), orDash(n.Status))
			}
			if err := t.flush(); err != nil {
				return err
			}
			return printLinks(cmd, v.Links)
		},
	}
}
