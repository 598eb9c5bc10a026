package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netloom/netloom/internal/wire"
)

// TestHostLines enters declarations into one host's line while the first
// is in flight, then lets each go in turn: a host never gets an older
// generation after a newer one, a replaced declaration does not go, and
// it ends with what the newer one did.
func TestHostLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		enter []int64
		went  []int64
		ends  map[int64]int64 // generation entered → generation whose answer it got
	}{
		{name: "one", enter: []int64{1}, went: []int64{1}, ends: map[int64]int64{1: 1}},
		{name: "newest waiting wins", enter: []int64{1, 2, 3}, went: []int64{1, 3}, ends: map[int64]int64{1: 1, 2: 3, 3: 3}},
		{name: "older after newer in flight", enter: []int64{2, 1}, went: []int64{2}, ends: map[int64]int64{1: 2, 2: 2}},
		{name: "older after newer waiting", enter: []int64{1, 3, 2}, went: []int64{1, 3}, ends: map[int64]int64{1: 1, 2: 3, 3: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newHostLines()
			slots := map[int64]*slot{}
			for _, g := range tt.enter {
				slots[g] = l.enter("h", g)
			}
			var went []int64
			for len(went) <= len(tt.enter) {
				var next *slot
				for _, s := range slots {
					if ended(s) {
						continue
					}
					select {
					case <-s.turn:
						next = s
					default:
					}
				}
				if next == nil {
					break
				}
				went = append(went, next.gen)
				l.leave("h", next, wire.AgentConvergence{Generation: next.gen})
			}
			ends := map[int64]int64{}
			for g, s := range slots {
				if !ended(s) {
					t.Errorf("generation %d never ended", g)
				}
				ends[g] = s.sum.Generation
			}
			if d := cmp.Diff(tt.went, went); d != "" {
				t.Errorf("went (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.ends, ends); d != "" {
				t.Errorf("ends (-want +got):\n%s", d)
			}
		})
	}
}

func ended(s *slot) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// TestHostContact: a host's failures in a row keep the time of the first,
// and an answer clears them.
func TestHostContact(t *testing.T) {
	t.Parallel()
	l := newHostLines()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.observe("h", t0, "no answer in 5s")
	l.observe("h", t0.Add(time.Minute), "no answer in 5s")
	if got := l.contact("h"); got.failed != "no answer in 5s" || !got.since.Equal(t0) || !got.at.Equal(t0.Add(time.Minute)) {
		t.Errorf("after two failures: %+v", got)
	}
	l.observe("h", t0.Add(2*time.Minute), "")
	if got := l.contact("h"); got.failed != "" {
		t.Errorf("after an answer: %+v", got)
	}
}
