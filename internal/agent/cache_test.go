package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/wire"
)

// TestCacheRoundTrip: what the cache holds comes back whole, the
// interfaces' addresses and the host pseudo-node included.
func TestCacheRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := cacheFile{Generation: 7, Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1)}, Nodes: []wire.DeclaredNode{
		{LabID: "lab-1", Name: "r1", Interfaces: []wire.DeclaredInterface{{Name: "eth0", VLANTag: 3001, Addresses: []string{"172.20.20.2/24", "2001:db8::2/64"}}}},
		{LabID: "lab-1", Name: "host", Interfaces: []wire.DeclaredInterface{{Name: "nlm0", VLANTag: 3001, Addresses: []string{"172.20.20.254/24"}}}},
	}}
	if err := writeCache(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := readCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cache (-want +got):\n%s", diff)
	}
}
