package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/wire"
)

func newHostCmd(root *rootOptions) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{Use: "host", Short: "Inspect and remove hosts", Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error { return usagef("host: a subcommand is required (ls, rm, unbind)") }}
	o.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List hosts and whether their agents are online",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			hosts, err := c.Hosts(cmd.Context())
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), hosts)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "STATUS", "DATA IP", "ADDRESS", "VERSION", "UNDERLAY MTU", "UNDERLAY")
			for _, h := range hosts {
				mtu := "-"
				if h.UnderlayMTU > 0 {
					mtu = fmt.Sprint(h.UnderlayMTU)
				}
				t.row(h.Name, hostStatus(h), h.DataIP, h.Address, orDash(h.Version), mtu, underlaySummary(h.Underlay))
			}
			return t.flush()
		},
	})
	var force bool
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Forget a host: its name is free for another agent (stop its agent first, or it registers again)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			out, err := c.RemoveHost(cmd.Context(), args[0], force)
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host %s removed\n", out.Host)
			for _, lab := range out.Unplaced {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s: its nodes on %s are unplaced: netloom lab deploy %s places them again\n", lab, out.Host, lab)
			}
			return nil
		},
	}
	rm.Flags().BoolVar(&force, "force", false, "remove it even while labs have nodes on it (they are unplaced)")
	cmd.AddCommand(rm, &cobra.Command{
		Use:   "unbind NAME",
		Short: "Let the next agent that registers NAME take it (a reinstalled host): its labs and nodes stay",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.Unbind(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host %s unbound: the next agent that registers %s takes it\n", args[0], args[0])
			return nil
		},
	})
	return cmd
}

func newLinkCmd(root *rootOptions) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{Use: "link", Short: "Inspect links", Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error { return usagef("link: a subcommand is required (ls)") }}
	o.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:               "ls LAB",
		Short:             "List a lab's links with their state, tags and VNI",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeLabs(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			links, err := c.Links(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), links)
			}
			return printLinks(cmd, links)
		},
	})
	return cmd
}

// underlaySummary says what an agent last found on the underlay to its
// peers: "ok" when every path passes, else each failing one.
// hostStatus is a host's status, with why and since when it is degraded.
func hostStatus(h wire.HostView) string {
	if h.StatusReason == "" {
		return h.Status
	}
	s := h.Status + ": " + h.StatusReason
	if h.DegradedSince != nil {
		s += " since " + h.DegradedSince.UTC().Format(time.RFC3339)
	}
	return s
}

func underlaySummary(checks []wire.UnderlayCheck) string {
	if len(checks) == 0 {
		return "-"
	}
	var bad []string
	for _, c := range checks {
		if c.Status != wire.UnderlayOK {
			bad = append(bad, c.PeerIP+": "+cmp.Or(c.Reason, c.Status))
		}
	}
	if len(bad) == 0 {
		return fmt.Sprintf("ok (%d peers)", len(checks))
	}
	return strings.Join(bad, "; ")
}

func printLinks(cmd *cobra.Command, links []wire.LinkState) error {
	t := newTable(cmd.OutOrStdout(), "LINK", "DESIRED", "ACTUAL", "HOSTS", "TAGS", "VNI", "MTU", "PORT", "VERIFIED", "ERROR")
	for _, l := range links {
		hosts := orDash(l.SourceHost)
		if l.CrossHost {
			hosts += "↔" + l.TargetHost
		}
		port := "-"
		if l.Tunnel != nil {
			port = l.Tunnel.PortName
		}
		mtu := intOrDash(l.MTU)
		if l.AllowFragmentation && l.CrossHost {
			mtu += " (fragmented)" // its outer packets may be split on the underlay
		}
		t.row(l.Name, l.DesiredState, l.ActualState, hosts, intOrDash(l.SourceTag)+"/"+intOrDash(l.TargetTag), intOrDash(l.VNI), mtu, port,
			ago(l.VerifiedAt), orDash(l.Error))
	}
	return t.flush()
}

func newConvergeCmd(root *rootOptions) *cobra.Command {
	o := &clientOptions{}
	var lab string
	var plan bool
	cmd := &cobra.Command{
		Use:   "converge",
		Short: "Declare every online agent's state now (--plan: show the declarations only)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if plan {
				p, err := c.ConvergePlan(cmd.Context(), lab)
				if err != nil {
					return err
				}
				if root.output == "json" {
					return printJSON(cmd.OutOrStdout(), p)
				}
				t := newTable(cmd.OutOrStdout(), "HOST", "LAB", "NODE", "INTERFACES (TAG)")
				for _, host := range slices.Sorted(maps.Keys(p.Agents)) {
					for _, n := range p.Agents[host].Nodes {
						var ifaces []string
						for _, i := range n.Interfaces {
							ifaces = append(ifaces, fmt.Sprintf("%s (%d)", i.Name, i.VLANTag))
						}
						t.row(host, n.LabID, n.Name, orDash(strings.Join(ifaces, ", ")))
					}
				}
				if err := t.flush(); err != nil {
					return err
				}
				t = newTable(cmd.OutOrStdout(), "HOST", "LAB", "LINK", "PORT", "VNI", "LOCAL", "REMOTE", "TAG")
				for _, host := range slices.Sorted(maps.Keys(p.Agents)) {
					for _, tn := range p.Agents[host].Tunnels {
						t.row(host, tn.LabID, tn.LinkID, tn.PortName, fmt.Sprint(tn.VNI), tn.LocalIP, tn.RemoteIP, fmt.Sprint(tn.ExpectedVLAN))
					}
				}
				return t.flush()
			}
			resp, err := c.Converge(cmd.Context(), lab)
			if err != nil {
				return err
			}
			if root.output == "json" {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			t := newTable(cmd.OutOrStdout(), "HOST", "NODES", "INTERFACES", "TUNNELS", "RESULTS", "REMOVED", "PROBLEM")
			failed := 0
			for _, a := range resp.Agents {
				var results []string
				for _, s := range slices.Sorted(maps.Keys(a.Results)) {
					results = append(results, fmt.Sprintf("%s=%d", s, a.Results[s]))
				}
				problem := a.Error
				if a.Skipped != "" {
					problem = "skipped: " + a.Skipped
				}
				if problem != "" || a.Results["error"] > 0 {
					failed++
				}
				t.row(a.Host, fmt.Sprint(a.Nodes), fmt.Sprint(a.Interfaces), fmt.Sprint(a.Tunnels), orDash(strings.Join(results, " ")),
					fmt.Sprint(len(a.OrphansRemoved)), orDash(problem))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d agents did not converge", failed, len(resp.Agents))
			}
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&lab, "lab", "", "only the hosts of this lab")
	cmd.Flags().BoolVar(&plan, "plan", false, "print the declarations and send nothing")
	return cmd
}

// ago says how long ago t was, for people; "-" when never.
func ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}
