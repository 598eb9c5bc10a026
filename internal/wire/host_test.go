package wire

import (
	"errors"
	"strings"
	"testing"
)

// TestDeclarationSum checks what a declaration's digest covers: its
// content, in any order, and neither its generation nor its conditional
// fields.
func TestDeclarationSum(t *testing.T) {
	t.Parallel()
	g := int64(7)
	n1 := DeclaredNode{LabID: "lab-1", Name: "r1", Interfaces: []DeclaredInterface{{Name: "eth1", VLANTag: 100}}}
	n2 := DeclaredNode{LabID: "lab-1", Name: "r2", Interfaces: []DeclaredInterface{}}
	t1 := DeclaredTunnel{LabID: "lab-1", LinkID: "r1:eth1-r9:eth1", PortName: "vxlan-a", VNI: 1, ExpectedVLAN: 100}
	t2 := DeclaredTunnel{LabID: "lab-1", LinkID: "r2:eth1-r9:eth2", PortName: "vxlan-b", VNI: 2, ExpectedVLAN: 101}
	base := HostDeclaration{Nodes: []DeclaredNode{n1, n2}, Tunnels: []DeclaredTunnel{t1, t2}, DeclaredLabs: []string{"lab-1", "lab-2"}}
	tests := []struct {
		name string
		decl HostDeclaration
		same bool
	}{
		{name: "itself", decl: base, same: true},
		{name: "other order", decl: HostDeclaration{Nodes: []DeclaredNode{n2, n1}, Tunnels: []DeclaredTunnel{t2, t1}, DeclaredLabs: []string{"lab-2", "lab-1"}}, same: true},
		{name: "generation and conditional fields", decl: HostDeclaration{Nodes: base.Nodes, Tunnels: base.Tunnels, DeclaredLabs: base.DeclaredLabs,
			Generation: &g, Digest: strings.Repeat("a", 64), AnswerDigest: strings.Repeat("b", 64)}, same: true},
		{name: "a tag", decl: HostDeclaration{Nodes: base.Nodes, Tunnels: []DeclaredTunnel{t1, {LabID: "lab-1", LinkID: t2.LinkID, PortName: "vxlan-b", VNI: 2, ExpectedVLAN: 102}},
			DeclaredLabs: base.DeclaredLabs}},
		{name: "a lab less", decl: HostDeclaration{Nodes: base.Nodes, Tunnels: base.Tunnels, DeclaredLabs: []string{"lab-1"}}},
		{name: "a node less", decl: HostDeclaration{Nodes: []DeclaredNode{n1}, Tunnels: base.Tunnels, DeclaredLabs: base.DeclaredLabs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.decl.Sum() == base.Sum(); got != tt.same {
				t.Errorf("same digest %v, want %v", got, tt.same)
			}
		})
	}
}

// TestConditionalValidate checks the conditional fields of a declaration.
func TestConditionalValidate(t *testing.T) {
	t.Parallel()
	g := int64(1)
	d := strings.Repeat("0f", 32)
	tests := []struct {
		name  string
		decl  HostDeclaration
		field string // the problem's field, "" for none
	}{
		{name: "same_as", decl: HostDeclaration{SameAs: d, AnswerDigest: d, Generation: &g}},
		{name: "whole with digest", decl: HostDeclaration{Digest: d, Generation: &g}},
		{name: "same_as without generation", decl: HostDeclaration{SameAs: d}, field: "same_as"},
		{name: "same_as with content", decl: HostDeclaration{SameAs: d, DeclaredLabs: []string{"lab-1"}, Generation: &g}, field: "same_as"},
		{name: "digest not hex", decl: HostDeclaration{Digest: strings.Repeat("z", 64)}, field: "digest"},
		{name: "digest upper case", decl: HostDeclaration{Digest: strings.Repeat("0F", 32)}, field: "digest"},
		{name: "answer digest short", decl: HostDeclaration{AnswerDigest: "0f"}, field: "answer_digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.decl.Validate()
			var ve *ValidationError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.field != "" && (!errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Field != tt.field):
				t.Errorf("Validate: %v, want one problem in %s", err, tt.field)
			}
		})
	}
}
