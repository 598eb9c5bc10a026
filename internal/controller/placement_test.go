package controller

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/topology"
)

func TestPlace(t *testing.T) {
	t.Parallel()
	link := func(a, b string) topology.Link {
		return topology.Link{A: topology.Endpoint{Node: a, Iface: "eth1"}, B: topology.Endpoint{Node: b, Iface: "eth2"}}
	}
	tests := []struct {
		name    string
		nodes   []topology.Node
		links   []topology.Link
		current map[string]string
		online  []string
		load    map[string]int
		want    map[string]string
		wantErr string
	}{
		{"explicit hosts kept", []topology.Node{{Name: "r1", Host: "hostB"}, {Name: "r2", Host: "hostA"}}, nil, nil,
			[]string{"hostA", "hostB"}, nil, map[string]string{"r1": "hostB", "r2": "hostA"}, ""},
		{"follows its neighbour", []topology.Node{{Name: "r1", Host: "hostB"}, {Name: "r2"}}, []topology.Link{link("r1", "r2")}, nil,
			[]string{"hostA", "hostB"}, map[string]int{"hostB": 10}, map[string]string{"r1": "hostB", "r2": "hostB"}, ""},
		{"least loaded when unlinked", []topology.Node{{Name: "r1"}, {Name: "r2"}}, nil, nil,
			[]string{"hostA", "hostB"}, map[string]int{"hostA": 1}, map[string]string{"r1": "hostB", "r2": "hostA"}, ""},
		{"explicit host offline", []topology.Node{{Name: "r1", Host: "hostC"}}, nil, nil, []string{"hostA"}, nil, nil, "node r1: host hostC is not online"},
		{"nothing online", []topology.Node{{Name: "r1"}}, nil, nil, nil, nil, nil, "no host is online"},
		{"sticky: a placed node stays, even where a new one would not go", []topology.Node{{Name: "r1"}, {Name: "r2"}}, nil,
			map[string]string{"r1": "hostB"}, []string{"hostA", "hostB"}, map[string]int{"hostB": 10},
			map[string]string{"r1": "hostB", "r2": "hostA"}, ""},
		{"sticky: a placed node stays on a host that is offline", []topology.Node{{Name: "r1"}}, nil,
			map[string]string{"r1": "hostB"}, nil, nil, map[string]string{"r1": "hostB"}, ""},
		{"a pin to another host moves it", []topology.Node{{Name: "r1", Host: "hostA"}}, nil,
			map[string]string{"r1": "hostB"}, []string{"hostA", "hostB"}, nil, map[string]string{"r1": "hostA"}, ""},
		{"a deleted host loses its nodes", []topology.Node{{Name: "r1"}}, nil,
			map[string]string{"r1": "hostGone"}, []string{"hostA"}, nil, map[string]string{"r1": "hostA"}, ""},
		{"an image goes to a container host", []topology.Node{{Name: "r1", Image: "frr"}, {Name: "r2"}}, []topology.Link{link("r1", "r2")}, nil,
			[]string{"hostA", "hostC"}, nil, map[string]string{"r1": "hostC", "r2": "hostC"}, ""},
		{"an image pinned to a host without containers", []topology.Node{{Name: "r1", Image: "frr", Host: "hostA"}}, nil, nil,
			[]string{"hostA", "hostC"}, nil, nil, "node r1 runs image frr: host hostA has no container runtime"},
		{"an image and no container host online", []topology.Node{{Name: "r1", Image: "frr"}}, nil, nil,
			[]string{"hostA"}, nil, nil, "node r1 runs image frr: no online host has a container runtime"},
		{"a node given an image leaves a host without containers", []topology.Node{{Name: "r1", Image: "frr"}}, nil,
			map[string]string{"r1": "hostA"}, []string{"hostA", "hostC"}, nil, map[string]string{"r1": "hostC"}, ""},
		{"a host of containers only gets none of the netns nodes", []topology.Node{{Name: "r1", Image: "frr"}, {Name: "r2"}}, []topology.Link{link("r1", "r2")}, nil,
			[]string{"hostA", "hostD"}, nil, map[string]string{"r1": "hostD", "r2": "hostA"}, ""},
		{"a netns node pinned to a host of containers only", []topology.Node{{Name: "r1", Host: "hostD"}}, nil, nil,
			[]string{"hostD"}, nil, nil, "node r1 has no image: host hostD runs containers only"},
		{"a netns node and only hosts of containers online", []topology.Node{{Name: "r1"}}, nil, nil,
			[]string{"hostD"}, nil, nil, "node r1 has no image: no online host runs netns nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			known := map[string]bool{"hostA": true, "hostB": true, "hostC": true, "hostD": true}
			offers := map[string]map[string]bool{"hostA": offered([]string{"ovs"}), "hostB": offered([]string{"netns"}),
				"hostC": offered([]string{"netns", "docker"}), "hostD": offered([]string{"docker"})}
			got, err := place(tt.nodes, tt.links, tt.current, known, tt.online, tt.load, offers)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
