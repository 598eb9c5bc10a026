package ovs

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/fabric"
)

// TestLinkWatch checks which link changes the watch reports: a device made,
// set up, given another MTU, renamed or deleted is; one set promiscuous, as
// ovs-vswitchd does to every port it adds, is not. After each step a marker
// device is made and deleted: its deletion, reported after everything the
// step caused, proves that nothing else was.
func TestLinkWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, OVS and namespaces")
	}
	_, h, _ := newHost(t)
	w, err := openLinkWatch(h.Netns)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan fabric.Event, 1024)
	done := make(chan error, 1)
	go func() { done <- w.run(func(e fabric.Event) { events <- e }) }()
	t.Cleanup(func() {
		w.Close()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	changed := func(name string) fabric.Event { return fabric.Event{Kind: fabric.DeviceChanged, Name: name} }
	deleted := func(name string) fabric.Event { return fabric.Event{Kind: fabric.DeviceDeleted, Name: name} }
	tests := []struct {
		name string
		ip   [][]string
		want []fabric.Event
	}{
		{"made", [][]string{{"link", "add", "vxa", "mtu", "1450", "type", "vxlan", "id", "42", "local", "10.77.0.1", "remote", "10.77.0.2", "dstport", "4789"}},
			[]fabric.Event{changed("vxa")}},
		{"set up", [][]string{{"link", "set", "vxa", "up"}}, []fabric.Event{changed("vxa")}},
		{"set promiscuous: nothing read changed", [][]string{{"link", "set", "vxa", "promisc", "on"}}, nil},
		{"new mtu", [][]string{{"link", "set", "vxa", "mtu", "1400"}}, []fabric.Event{changed("vxa")}},
		{"set down and renamed", [][]string{{"link", "set", "vxa", "down"}, {"link", "set", "vxa", "name", "vxr"}},
			[]fabric.Event{changed("vxa"), deleted("vxa"), changed("vxr")}},
		{"deleted", [][]string{{"link", "del", "vxr"}}, []fabric.Event{deleted("vxr")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := [][]string{{"link", "add", "mark", "type", "vxlan", "id", "7", "dstport", "4789"}, {"link", "del", "mark"}}
			for _, args := range append(tt.ip, marker...) {
				if out, err := h.Exec(t.Context(), "ip", args...); err != nil {
					t.Fatalf("ip %v: %v: %s", args, err, out)
				}
			}
			var got []fabric.Event
			timeout := time.After(5 * time.Second)
			for {
				select {
				case e := <-events:
					if e == deleted("mark") {
						if diff := cmp.Diff(tt.want, got); diff != "" {
							t.Errorf("events (-want +got):\n%s", diff)
						}
						return
					}
					if !strings.HasPrefix(e.Name, "mark") {
						got = append(got, e)
					}
				case <-timeout:
					t.Fatalf("the marker's deletion was not reported within 5 s; got %v", got)
				}
			}
		})
	}
}
