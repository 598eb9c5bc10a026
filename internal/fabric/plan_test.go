package fabric

import "testing"

func TestPlanChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		plan Plan
		want int
	}{
		{"none", Plan{Retag: map[string]int{}}, 0},
		{"one of each", Plan{
			Devices: []Device{{Name: "a"}}, AddPorts: []Port{{Name: "a"}}, DeletePorts: []string{"b"},
			Retag: map[string]int{"c": 2}, SetMTU: map[string]int{"d": 1400}, DeleteDevices: []string{"b"},
		}, 6},
		{"ports only", Plan{AddPorts: make([]Port, 3)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.plan.Changes(); got != tt.want {
				t.Errorf("Changes() = %d, want %d", got, tt.want)
			}
			if got := tt.plan.Empty(); got != (tt.want == 0) {
				t.Errorf("Empty() = %v with %d changes", got, tt.want)
			}
		})
	}
}
