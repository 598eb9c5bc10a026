package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestLease: one controller holds the lease at a time; another takes it
// once it expired or was released; only the holder gets generations.
func TestLease(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := Open(ctx, mk(t), quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const ttl = time.Minute
			steps := []struct {
				name string
				id   string
				ttl  time.Duration
				want string // the holder after
			}{
				{"first takes it", "a", ttl, "a"},
				{"second is refused", "b", ttl, "a"},
				{"holder renews, expired at once", "a", -time.Second, "a"},
				{"second takes the expired lease", "b", ttl, "b"},
				{"deposed leader is refused", "a", ttl, "b"},
			}
			for _, st := range steps {
				if got, err := s.TakeLease(ctx, st.id, st.ttl); err != nil || got != st.want {
					t.Fatalf("%s: holder %q, %v; want %q", st.name, got, err, st.want)
				}
			}
			g, err := s.NextGeneration(ctx, "b")
			if err != nil {
				t.Fatalf("generation for the leader: %v", err)
			}
			if _, err := s.NextGeneration(ctx, "a"); !errors.Is(err, ErrNotLeader) {
				t.Errorf("generation for the deposed leader: %v; want ErrNotLeader", err)
			}
			if next, err := s.NextGeneration(ctx, ""); err != nil || next != g+1 {
				t.Errorf("unfenced generation %d, %v; want %d: one counter", next, err, g+1)
			}
			// Writes in a leader's context are fenced as generations are.
			if _, err := s.RegisterHost(ctx, Host{Name: "h", Address: "http://h:7401", DataIP: "10.0.0.1"}); err != nil {
				t.Fatal(err)
			}
			verified := func() bool {
				var v bool
				if err := s.queryRow(ctx, `SELECT verified_at IS NOT NULL FROM hosts WHERE name = ?`, "h").Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			o := Observations{Answered: []string{"h"}}
			if err := s.RecordObservations(AsLeader(ctx, "a"), time.Now(), o); !errors.Is(err, ErrNotLeader) || verified() {
				t.Errorf("the deposed leader's observations: %v, written %v; want ErrNotLeader, nothing written", err, verified())
			}
			if err := s.RecordObservations(AsLeader(ctx, "b"), time.Now(), o); err != nil || !verified() {
				t.Errorf("the leader's observations: %v, written %v", err, verified())
			}
			got, err := s.Controllers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []ControllerRow{{ID: "a"}, {ID: "b", Leader: true}}
			if d := cmp.Diff(want, got, cmpopts.IgnoreFields(ControllerRow{}, "SeenAgo")); d != "" {
				t.Errorf("controllers (-want +got):\n%s", d)
			}
			if err := s.ReleaseLease(ctx, "a"); err != nil { // not its lease: nothing happens
				t.Fatal(err)
			}
			if got, _ := s.TakeLease(ctx, "a", ttl); got != "b" {
				t.Errorf("after a non-holder's release: holder %q, want b", got)
			}
			if err := s.ReleaseLease(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.TakeLease(ctx, "a", ttl); got != "a" {
				t.Errorf("after the holder's release: holder %q, want a", got)
			}
		})
	}
}

// TestLockSole: a second controller on one SQLite database is refused
// until the first closes it.
func TestLockSole(t *testing.T) {
	ctx := t.Context()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "netloom.db")
	first, err := Open(ctx, dsn, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.LockSole(); err != nil {
		t.Fatalf("first: %v", err)
	}
	second, err := Open(ctx, dsn, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.LockSole(); !errors.Is(err, ErrHeld) {
		t.Errorf("second while the first runs: %v; want ErrHeld", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := second.LockSole(); err != nil {
		t.Errorf("second after the first closed: %v", err)
	}
}
