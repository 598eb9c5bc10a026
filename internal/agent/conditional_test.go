package agent

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	agentclient "github.com/netloom/netloom/internal/agent/client"
	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
	"github.com/netloom/netloom/internal/wire"
)

// TestConditionalDeclaration runs conditional host declarations (same_as,
// answer_digest): a held declaration converges again, drift included, as
// if sent whole, one not held is refused with ErrNotHeld (412), and an
// answer equal to the known one comes back as same_answer.
func TestConditionalDeclaration(t *testing.T) {
	t.Parallel()
	whole := wire.HostDeclaration{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1), tun("lab-1", 2)}, DeclaredLabs: []string{"lab-1"}}
	whole.Digest = whole.Sum()
	same := wire.HostDeclaration{SameAs: whole.Digest}
	// A placeholder is declared but not held as declared: a restore cannot
	// stand for the declaration.
	held := wire.HostDeclaration{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1), withPlaceholder(tun("lab-1", 3))}, DeclaredLabs: []string{"lab-1"}}
	held.Digest = held.Sum()

	// step is one declaration under the next generation, after drift and
	// a restart of the converger from its cache, when asked for.
	type step struct {
		req       wire.HostDeclaration
		known     bool // send the digest of the previous answer
		drift     func(f *fabrictest.Fake)
		restart   bool
		wantErr   error
		wantSame  bool
		wantState []string // tunnel statuses of a whole answer
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "not held: refused", steps: []step{
			{req: same, wantErr: ErrNotHeld},
		}},
		{name: "held: converged again", steps: []step{
			{req: whole, wantState: []string{"created", "created"}},
			{req: same, wantState: []string{"converged", "converged"}},
		}},
		{name: "held: drift repaired, answered whole", steps: []step{
			{req: whole, wantState: []string{"created", "created"}},
			{req: same, known: true, drift: func(f *fabrictest.Fake) { f.DeletePort(tun("lab-1", 2).PortName) },
				wantState: []string{"converged", "created"}},
		}},
		{name: "same answer: only the generation", steps: []step{
			{req: whole, wantState: []string{"created", "created"}},
			{req: same, wantState: []string{"converged", "converged"}},
			{req: same, known: true, wantSame: true},
		}},
		{name: "whole without digest: nothing held", steps: []step{
			{req: whole, wantState: []string{"created", "created"}},
			{req: wire.HostDeclaration{Tunnels: whole.Tunnels, DeclaredLabs: whole.DeclaredLabs}, wantState: []string{"converged", "converged"}},
			{req: same, wantErr: ErrNotHeld},
		}},
		{name: "restart from the cache: still held", steps: []step{
			{req: whole, wantState: []string{"created", "created"}},
			{req: same, restart: true, drift: func(f *fabrictest.Fake) { f.DeletePort(tun("lab-1", 1).PortName) },
				wantState: []string{"converged", "converged"}}, // the restore repaired it
		}},
		{name: "restart from a cache that is not the declaration: not held", steps: []step{
			{req: held, wantState: []string{"created", "protected"}},
			{req: wire.HostDeclaration{SameAs: held.Digest}, wantState: []string{"converged", "protected"}},
			{req: wire.HostDeclaration{SameAs: held.Digest}, restart: true, wantErr: ErrNotHeld},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := newTestConverger(t)
			var last string
			for i, s := range tt.steps {
				if s.drift != nil {
					s.drift(f)
				}
				if s.restart {
					c = newConverger(f, runtimetest.New(), c.stateDir, 1450, generations{maxJump: DefaultMaxGenerationJump}, quiet(), newMetrics())
					if err := c.restore(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				req := s.req
				req.Generation = gen(int64(i + 1))
				if s.known {
					req.AnswerDigest = last
				}
				if err := req.Validate(); err != nil {
					t.Fatalf("step %d: test request invalid: %v", i, err)
				}
				resp, err := c.declareHost(t.Context(), req)
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: error %v, want %v", i, err, s.wantErr)
				}
				if err != nil {
					continue
				}
				if resp.ObservedGeneration == nil || *resp.ObservedGeneration != int64(i+1) {
					t.Errorf("step %d: observed generation %v, want %d", i, resp.ObservedGeneration, i+1)
				}
				if resp.SameAnswer != s.wantSame {
					t.Fatalf("step %d: same_answer %v, want %v: %+v", i, resp.SameAnswer, s.wantSame, resp)
				}
				if s.wantSame {
					continue
				}
				var got []string
				for _, r := range resp.Tunnels {
					got = append(got, r.Status)
				}
				if diff := cmp.Diff(s.wantState, got); diff != "" {
					t.Errorf("step %d: tunnel statuses (-want +got):\n%s", i, diff)
				}
				if want := resp.Sum(); req.Digest == "" && req.SameAs == "" {
					if resp.AnswerDigest != "" {
						t.Errorf("step %d: answer digest %q to a declaration without one, want none", i, resp.AnswerDigest)
					}
				} else if resp.AnswerDigest != want {
					t.Errorf("step %d: answer digest %q, want %q", i, resp.AnswerDigest, want)
				}
				last = resp.AnswerDigest
			}
		})
	}
}

// TestConditionalOverHTTP checks the wire of conditional declarations
// with the agent's client: 412 as agentclient.ErrNotHeld, then a whole
// declaration, then same_answer.
func TestConditionalOverHTTP(t *testing.T) {
	t.Parallel()
	_, srv := cacheServer(t, t.TempDir())
	ag := agentclient.New(srv.URL, "tok", nil)
	whole := wire.HostDeclaration{Tunnels: []wire.DeclaredTunnel{tun("lab-1", 1)}, DeclaredLabs: []string{"lab-1"}, Generation: gen(1)}
	whole.Digest = whole.Sum()
	if _, err := ag.DeclareHost(t.Context(), wire.HostDeclaration{SameAs: whole.Digest, Generation: gen(1)}); !errors.Is(err, agentclient.ErrNotHeld) {
		t.Fatalf("same_as before any declaration: %v, want ErrNotHeld", err)
	}
	first, err := ag.DeclareHost(t.Context(), whole)
	if err != nil || first.AnswerDigest == "" {
		t.Fatalf("whole declaration: %v, answer digest %q", err, first.AnswerDigest)
	}
	// The tunnel made first is found next: another answer.
	second, err := ag.DeclareHost(t.Context(), wire.HostDeclaration{SameAs: whole.Digest, Generation: gen(2), AnswerDigest: first.AnswerDigest})
	if err != nil || second.SameAnswer || second.AnswerDigest == first.AnswerDigest {
		t.Fatalf("repeat after a change: %v, %+v, want a whole answer", err, second)
	}
	resp, err := ag.DeclareHost(t.Context(), wire.HostDeclaration{SameAs: whole.Digest, Generation: gen(3), AnswerDigest: second.AnswerDigest})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.SameAnswer || *resp.ObservedGeneration != 3 || resp.Tunnels != nil {
		t.Errorf("repeat: %+v, want only same_answer and generation 3", resp)
	}
}
