package netns

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestDumpRetriesInterrupted checks that Dump takes an interrupted dump
// again, answers the first whole one, and gives up after dumpAttempts.
func TestDumpRetriesInterrupted(t *testing.T) {
	t.Parallel()
	other := errors.New("permission denied")
	tests := []struct {
		name        string
		interrupted int   // how many tries come back interrupted first
		final       error // what the try after them returns
		wantTries   int
		wantErr     error
	}{
		{name: "whole at once", wantTries: 1},
		{name: "interrupted then whole", interrupted: 3, wantTries: 4},
		{name: "whole on the last try", interrupted: dumpAttempts - 1, wantTries: dumpAttempts},
		{name: "always interrupted", interrupted: dumpAttempts + 5, wantTries: dumpAttempts, wantErr: netlink.ErrDumpInterrupted},
		{name: "other error not retried", final: other, wantTries: 1, wantErr: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tries := 0
			got, err := Dump("things", func() ([]int, error) {
				tries++
				if tries <= tt.interrupted {
					return []int{1}, netlink.ErrDumpInterrupted // partial
				}
				if tt.final != nil {
					return nil, tt.final
				}
				return []int{1, 2}, nil
			})
			if tries != tt.wantTries {
				t.Errorf("tries = %d, want %d", tries, tt.wantTries)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Errorf("Dump = %v, %v: want no result and %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != 2 {
				t.Errorf("Dump = %v, %v: want the whole dump", got, err)
			}
		})
	}
}
