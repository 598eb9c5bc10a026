package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rootOptions are the flags every command shares.
type rootOptions struct {
	output string // "table" or "json"
}

// usageError marks a mistake in how netloom was called (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// usageArgs turns a positional-argument check into a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

func newRootCmd() *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:   "netloom",
		Short: "Virtual network labs across many hosts",
		Long: "netloom runs virtual network labs across many hosts: a controller owns the desired\n" +
			"network state of every lab and agents keep each host's Open vSwitch bridge,\n" +
			"VXLAN tunnels and node ports matching it.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// With Args set, cobra hands an unknown subcommand to RunE instead of
		// failing with an untyped error, so it exits as bad usage.
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Help()
			return usagef("a command is required")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			if opts.output != "table" && opts.output != "json" {
				return usagef("--output: %q is not one of table, json", opts.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&opts.output, "output", "o", "table", "output format: table or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newVersionCmd(opts), newAgentCmd(opts), newControllerCmd(opts), newDemoCmd(opts),
		newLabCmd(opts), newHostCmd(opts), newLinkCmd(opts), newConvergeCmd(opts), newGraphCmd(opts), newExecCmd(opts))
	return root
}

// envName is the environment twin of a flag: --data-ip → NETLOOM_DATA_IP.
func envName(flag string) string {
	return "NETLOOM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag the command line left unset from its NETLOOM_…
// twin, so the command line always wins over the environment.
func applyEnv(flags *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if serr := flags.Set(f.Name, v); serr != nil {
			err = usagef("%s: %v", envName(f.Name), serr)
		}
	})
	return err
}

// printJSON writes v as indented JSON, the -o json form of every command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
