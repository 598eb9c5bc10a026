package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/wire"
)

func newGraphCmd(root *rootOptions) *cobra.Command {
	o := &clientOptions{}
	var format string
	cmd := &cobra.Command{
		Use:   "graph LAB",
		Short: "Print a lab's topology as Graphviz DOT or Mermaid: hosts as clusters, tunnels marked",
		Long: "Print a lab's topology as Graphviz DOT (--format dot, the default: `netloom graph lab | dot -Tsvg > lab.svg`)\n" +
			"or Mermaid (--format mermaid). Nodes are grouped by the host they run on; a cross-host link (a VXLAN tunnel)\n" +
			"is dashed and labelled with its VNI; a link that is not up is red, with its state.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "dot" && format != "mermaid" {
				return usagef("--format: %q is not one of dot, mermaid", format)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			v, err := c.Lab(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), drawLab(v, format))
			return err
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&format, "format", "dot", "dot or mermaid")
	return cmd
}

// drawLab draws a lab as DOT or Mermaid text.
func drawLab(v wire.LabView, format string) string {
	byHost := map[string][]wire.Node{}
	for _, n := range v.Nodes {
		byHost[n.PlacedOn] = append(byHost[n.PlacedOn], n)
	}
	hosts := slices.Sorted(maps.Keys(byHost))
	if len(hosts) > 0 && hosts[0] == "" { // nodes not placed yet come last
		hosts = append(hosts[1:], "")
	}
	if format == "mermaid" {
		return drawMermaid(v, hosts, byHost)
	}
	return drawDOT(v, hosts, byHost)
}

// hostLabel names a host's group; nodes not yet placed have none.
func hostLabel(h string) string {
	if h == "" {
		return "not placed"
	}
	return "host " + h
}

// edgeLabel says what a link is: its interfaces, its VNI when it is a
// tunnel, and its state when that is not up.
func edgeLabel(l wire.LinkState) string {
	s := l.SourceIface + " – " + l.TargetIface
	if l.CrossHost && l.VNI != nil {
		s += fmt.Sprintf(" (VNI %d)", *l.VNI)
	}
	if l.ActualState != "up" {
		s += " [" + l.ActualState + "]"
	}
	return s
}

func drawDOT(v wire.LabView, hosts []string, byHost map[string][]wire.Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %q {\n\tlabel=%q;\n\tnode [shape=box];\n", v.Name, "lab "+v.Name+": "+v.State)
	for i, h := range hosts {
		fmt.Fprintf(&b, "\tsubgraph \"cluster_%d\" {\n\t\tlabel=%q;\n", i, hostLabel(h))
		for _, n := range byHost[h] {
			label := n.Name
			if n.Status != "" && n.Status != "up" {
				label += " [" + n.Status + "]"
			}
			fmt.Fprintf(&b, "\t\t%q [label=%q];\n", n.Name, label)
		}
		b.WriteString("\t}\n")
	}
	for _, l := range v.Links {
		var attrs []string
		attrs = append(attrs, fmt.Sprintf("label=%q", edgeLabel(l)))
		if l.CrossHost {
			attrs = append(attrs, "style=dashed")
		}
		if l.ActualState != "up" {
			attrs = append(attrs, "color=red")
		}
		fmt.Fprintf(&b, "\t%q -- %q [%s];\n", l.SourceNode, l.TargetNode, strings.Join(attrs, ", "))
	}
	b.WriteString("}\n")
	return b.String()
}

// mermaidID makes a name a Mermaid identifier: node names may hold "." and
// "-", which Mermaid reads as syntax.
func mermaidID(prefix, name string) string {
	return prefix + strings.NewReplacer(".", "_", "-", "_").Replace(name)
}

func drawMermaid(v wire.LabView, hosts []string, byHost map[string][]wire.Node) string {
	var b strings.Builder
	b.WriteString("graph LR\n")
	for i, h := range hosts {
		fmt.Fprintf(&b, "  subgraph h%d[\"%s\"]\n", i, hostLabel(h))
		for _, n := range byHost[h] {
			label := n.Name
			if n.Status != "" && n.Status != "up" {
				label += " [" + n.Status + "]"
			}
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", mermaidID("n_", n.Name), label)
		}
		b.WriteString("  end\n")
	}
	var red []string
	for i, l := range v.Links {
		arrow := "---"
		if l.CrossHost {
			arrow = "-.-"
		}
		fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", mermaidID("n_", l.SourceNode), arrow, edgeLabel(l), mermaidID("n_", l.TargetNode))
		if l.ActualState != "up" {
			red = append(red, fmt.Sprint(i))
		}
	}
	if len(red) > 0 {
		fmt.Fprintf(&b, "  linkStyle %s stroke:red\n", strings.Join(red, ","))
	}
	return b.String()
}
