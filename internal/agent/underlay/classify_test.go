package underlay

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/netloom/netloom/internal/wire"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	peer := netip.MustParseAddr("10.77.0.2")
	tests := []struct {
		name       string
		r          probes
		wantStatus string
		wantPath   int
		wantReason string
	}{
		{"all pass", probes{host: true, small: true, need: true}, wire.UnderlayOK, 0, ""},
		{"ping blocked, VXLAN passes", probes{small: true, need: true}, wire.UnderlayOK, 0, ""},
		{"short path", probes{host: true, small: true, path: 1400}, wire.UnderlayMTUTooSmall, 1400,
			"path MTU 1400 to 10.77.0.2 is below the 1500 the links need"},
		{"port blocked", probes{host: true}, wire.UnderlayPortBlocked, 0,
			"10.77.0.2 answers on the underlay, but VXLAN on UDP port 4789 does not pass"},
		{"nothing answers", probes{}, wire.UnderlayUnreachable, 0, "10.77.0.2 does not answer on the underlay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := classify(peer, 1500, 4789, tt.r)
			if c.Status != tt.wantStatus || c.PathMTU != tt.wantPath || c.Reason != tt.wantReason || c.NeedMTU != 1500 || c.PeerIP != "10.77.0.2" {
				t.Errorf("got %+v, want status %s, path %d, reason %q", c, tt.wantStatus, tt.wantPath, tt.wantReason)
			}
		})
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lo, hi int
		passes func(size int) bool
		want   int
	}{
		{"1400 of 1500", 128, 1500, func(s int) bool { return s <= 1400 }, 1400},
		{"one below need", 128, 1500, func(s int) bool { return s <= 1499 }, 1499},
		{"nothing above small", 128, 1500, func(s int) bool { return s <= 128 }, 128},
		{"jumbo need, standard path", 128, 9050, func(s int) bool { return s <= 1500 }, 1500},
		{"widest range resolves", 1, 65535, func(s int) bool { return s <= 40000 }, 40000},
		{"adjacent bounds", 1400, 1401, func(s int) bool { return true }, 1400},
		// A probe lost at 1328, in the first round, lowers the answer below
		// it, never raises it past what passed.
		{"a lost probe", 128, 1500, func(s int) bool { return s <= 1400 && s != 1328 }, 1327},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rounds := 0
			got := search(tt.lo, tt.hi, func(sizes []int) []bool {
				rounds++
				if len(sizes) > searchWidth || !slices.IsSorted(sizes) || sizes[0] <= tt.lo || sizes[len(sizes)-1] >= tt.hi {
					t.Errorf("round %d probes %v, want at most %d sizes in (%d, %d)", rounds, sizes, searchWidth, tt.lo, tt.hi)
				}
				ok := make([]bool, len(sizes))
				for i, s := range sizes {
					ok[i] = tt.passes(s)
				}
				return ok
			})
			if got != tt.want {
				t.Errorf("search = %d, want %d", got, tt.want)
			}
			if rounds > searchRounds {
				t.Errorf("%d rounds, want at most %d", rounds, searchRounds)
			}
		})
	}
}

func TestBetween(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lo, hi, n int
		want      []int
	}{
		{10, 20, 4, []int{12, 14, 16, 18}},
		{10, 12, 4, []int{11}},
		{10, 11, 4, []int{}},
		{0, 16, 15, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	}
	for _, tt := range tests {
		if got := between(tt.lo, tt.hi, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("between(%d, %d, %d) = %v, want %v", tt.lo, tt.hi, tt.n, got, tt.want)
		}
	}
}
