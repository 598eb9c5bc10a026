package main

import (
	"strings"
	"testing"

	"github.com/netloom/netloom/internal/wire"
)

func TestDrawLab(t *testing.T) {
	t.Parallel()
	vni := 4711
	v := wire.LabView{Lab: wire.Lab{Name: "ring", State: "error"},
		Nodes: []wire.Node{{Name: "r1", PlacedOn: "hostA", Status: "up"}, {Name: "r2", PlacedOn: "hostA", Status: "up"},
			{Name: "pc-1.x", PlacedOn: "hostB", Status: "error"}, {Name: "r9"}},
		Links: []wire.LinkState{
			{SourceNode: "r1", SourceIface: "eth1", TargetNode: "r2", TargetIface: "eth1", ActualState: "up"},
			{SourceNode: "pc-1.x", SourceIface: "eth1", TargetNode: "r1", TargetIface: "eth2", ActualState: "error", CrossHost: true, VNI: &vni},
		}}
	tests := []struct {
		format string
		want   []string
	}{
		{"dot", []string{`graph "ring" {`, `subgraph "cluster_0" {`, `label="host hostA";`, `"r2" [label="r2"];`,
			`"pc-1.x" [label="pc-1.x [error]"];`, `label="not placed";`, `"r1" -- "r2" [label="eth1 – eth1"];`,
			`"pc-1.x" -- "r1" [label="eth1 – eth2 (VNI 4711) [error]", style=dashed, color=red];`}},
		{"mermaid", []string{"graph LR", `subgraph h1["host hostB"]`, `n_pc_1_x["pc-1.x [error]"]`, `subgraph h2["not placed"]`,
			`n_r1 ---|"eth1 – eth1"| n_r2`, `n_pc_1_x -.-|"eth1 – eth2 (VNI 4711) [error]"| n_r1`, "linkStyle 1 stroke:red"}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			got := drawLab(v, tt.format)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
