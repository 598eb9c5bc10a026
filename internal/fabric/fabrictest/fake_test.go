package fabrictest

import (
	"context"
	"testing"

	"github.com/netloom/netloom/internal/fabric"
)

func TestFakeConformance(t *testing.T) {
	RunConformance(t, func(t *testing.T) Host {
		f := New()
		return Host{Driver: f, AddForeignPort: func(_ context.Context, name string) error {
			f.SetPort(fabric.Port{Name: name, Tag: 5})
			return nil
		}}
	})
}
