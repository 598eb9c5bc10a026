package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/controller/client"
)

// Shell completion (netloom completion bash|zsh|fish, cobra's) of the
// names a command takes: labs and their nodes, asked of the controller
// with the command's own --controller, --token-file and --timeout. A
// controller that does not answer gives no completions and no message:
// a shell prompt is no place for errors.

// completionTimeout bounds each question a completion asks: a person is
// waiting at a prompt, where --timeout's default (a minute) is too long.
const completionTimeout = 3 * time.Second

// completeLabs completes a command's first argument, a lab name.
func completeLabs(o *clientOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return labNames(cmd, o, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeNodes completes the arguments LAB NODE: a lab name, then the
// name of one of that lab's nodes.
func completeNodes(o *clientOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return labNames(cmd, o, toComplete), cobra.ShellCompDirectiveNoFileComp
		case 1:
			return nodeNames(cmd, o, args[0], toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// labNames are the controller's labs that start with prefix, each with
// its state as the description a shell may show.
func labNames(cmd *cobra.Command, o *clientOptions, prefix string) []cobra.Completion {
	c, ctx, cancel, ok := completionClient(cmd, o)
	if !ok {
		return nil
	}
	defer cancel()
	labs, err := c.Labs(ctx)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, l := range labs {
		if strings.HasPrefix(l.Name, prefix) {
			out = append(out, cobra.CompletionWithDesc(l.Name, l.State))
		}
	}
	return out
}

// nodeNames are the nodes of lab that start with prefix, each described
// by its kind and, once placed, its host.
func nodeNames(cmd *cobra.Command, o *clientOptions, lab, prefix string) []cobra.Completion {
	c, ctx, cancel, ok := completionClient(cmd, o)
	if !ok {
		return nil
	}
	defer cancel()
	v, err := c.Lab(ctx, lab)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, n := range v.Nodes {
		if !strings.HasPrefix(n.Name, prefix) {
			continue
		}
		desc := n.Kind
		if n.PlacedOn != "" {
			desc += " on " + n.PlacedOn
		}
		out = append(out, cobra.CompletionWithDesc(n.Name, desc))
	}
	return out
}

// completionClient is the client a completion asks with: the command's
// flags, their NETLOOM_… twins (cobra's completion runs no PreRun), and
// --timeout at most completionTimeout.
func completionClient(cmd *cobra.Command, o *clientOptions) (*client.Client, context.Context, context.CancelFunc, bool) {
	if applyEnv(cmd.Flags(), os.LookupEnv) != nil {
		return nil, nil, nil, false
	}
	opts := *o
	if opts.timeout <= 0 || opts.timeout > completionTimeout {
		opts.timeout = completionTimeout
	}
	c, err := opts.client()
	if err != nil {
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
	return c, ctx, cancel, true
}
