package testbed

import (
	"context"
	"flag"
	"log/slog"
	"strings"
)

// TB is the part of testing.TB that Start uses; *testing.T satisfies it, and
// this package stays free of the testing package.
type TB interface {
	Helper()
	Name() string
	Context() context.Context
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Failed() bool
}

// short reports whether the test binary runs with -short, which skips every
// test that needs root, OVS daemons, namespaces or the netloom binary. It
// reads the flag testing.Short reads, so this package stays free of the
// testing package; outside a test binary there is no such flag.
func short() bool {
	f := flag.Lookup("test.short")
	return f != nil && f.Value.String() == "true"
}

// skipShort skips a real-system test under -short.
func skipShort(t TB) {
	t.Helper()
	if short() {
		t.Skip("real-system test (root, OVS, namespaces): skipped with -short")
	}
}

// Start makes a bed for a test, removed when the test ends, whatever its
// outcome. The cleanup also fails the test if anything of the bed remains.
// Under -short it skips the test instead: every real-system test starts
// here, directly or through StartCluster.
func Start(t TB) *Bed {
	t.Helper()
	skipShort(t)
	b, err := New(t.Context(), Config{Name: t.Name(), Log: slog.New(slog.NewTextHandler(tbWriter{t}, nil))})
	if b != nil {
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("close test bed: %v", err)
			}
			left, err := b.Residue()
			if err != nil {
				t.Errorf("check test bed residue: %v", err)
			}
			if len(left) > 0 {
				t.Errorf("test bed left behind: %s", strings.Join(left, ", "))
			}
		})
	}
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	return b
}

// tbWriter sends the bed's log lines to the test log.
type tbWriter struct{ t TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
