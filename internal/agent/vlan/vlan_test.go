package vlan

import (
	"errors"
	"sync"
	"testing"
)

func TestAllocate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		seed  []int
		r     Range
		steps int // allocations before the checked one
		want  int
	}{
		{"first isolated", nil, Isolated, 0, 100},
		{"first linked", nil, Linked, 0, 2050},
		{"skips seeded", []int{100, 101, 103}, Isolated, 0, 102},
		{"next after allocations", []int{2050}, Linked, 2, 2053},
		{"seed zero ignored", []int{0}, Isolated, 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := New(tt.seed)
			for range tt.steps {
				if _, err := a.Allocate(tt.r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := a.Allocate(tt.r)
			if err != nil || got != tt.want {
				t.Fatalf("Allocate = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestFallbackAndExhaustion(t *testing.T) {
	t.Parallel()
	var all []int
	for tag := Linked.Lo; tag <= Linked.Hi; tag++ {
		all = append(all, tag)
	}
	a := New(all)
	if got, err := a.Allocate(Linked); err != nil || got != Isolated.Lo {
		t.Fatalf("full linked range: Allocate = %d, %v; want fallback to %d", got, err, Isolated.Lo)
	}
	for tag := Isolated.Lo + 1; tag <= Isolated.Hi; tag++ {
		a.Reserve(tag)
	}
	if _, err := a.Allocate(Isolated); !errors.Is(err, ErrExhausted) {
		t.Fatalf("both ranges full: err %v, want ErrExhausted", err)
	}
	a.Release(3000)
	if got, err := a.Allocate(Isolated); err != nil || got != 3000 {
		t.Fatalf("after release: Allocate = %d, %v; want 3000", got, err)
	}
}

// TestConcurrent hands out tags from many goroutines and checks that no tag
// is given twice (W-7).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	a := New(nil)
	const n = 64
	tags := make(chan int, 4*n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range 4 {
				tag, err := a.Allocate(Linked)
				if err != nil {
					t.Error(err)
					return
				}
				tags <- tag
			}
		})
	}
	wg.Wait()
	close(tags)
	seen := map[int]bool{}
	for tag := range tags {
		if seen[tag] {
			t.Fatalf("tag %d handed out twice", tag)
		}
		seen[tag] = true
	}
	if len(seen) != 4*n {
		t.Fatalf("%d tags, want %d", len(seen), 4*n)
	}
}

func TestSync(t *testing.T) {
	t.Parallel()
	a := New([]int{100, 101, 2050})
	a.Sync([]int{101, 0})
	if a.InUse(100) || !a.InUse(101) || a.InUse(2050) {
		t.Fatalf("after Sync: 100 %v 101 %v 2050 %v; want only 101 taken", a.InUse(100), a.InUse(101), a.InUse(2050))
	}
	if got, _ := a.Allocate(Isolated); got != 100 {
		t.Fatalf("Allocate after Sync = %d, want 100", got)
	}
}
