package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/fabric/fabrictest"
	"github.com/netloom/netloom/internal/runtime/runtimetest"
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

// cacheServer serves an agent on the fake bridge whose state dir is dir.
func cacheServer(t *testing.T, dir string) (*Agent, *httptest.Server) {
	t.Helper()
	cfg := testConfig(t)
	cfg.StateDir = dir
	a, err := New(cfg, fabrictest.New(), runtimetest.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv
}

// declareOver declares tunnels at generation g over HTTP and returns the
// answer's cache_error ("" for none).
func declareOver(t *testing.T, srv *httptest.Server, g int64, tunnels ...wire.DeclaredTunnel) string {
	t.Helper()
	body, err := json.Marshal(wire.DeclareStateRequest{Tunnels: tunnels, DeclaredLabs: []string{"lab-1"}, Generation: &g})
	if err != nil {
		t.Fatal(err)
	}
	code, out := send(t, srv, "POST", "/overlay/declare-state", "tok", string(body))
	var resp wire.DeclareStateResponse
	if err := json.Unmarshal([]byte(out), &resp); code != http.StatusOK || err != nil {
		t.Fatalf("declare generation %d: %d %s", g, code, out)
	}
	if resp.CacheError == nil {
		return ""
	}
	return *resp.CacheError
}

// TestCacheWriteFailureIsReported takes the state dir away (a file where
// the folder should be, which fails for root too): the declaration still
// converges and answers 200, but says the cache was not written, and
// /healthz answers 503 with the reason until a write succeeds again.
func TestCacheWriteFailureIsReported(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	_, srv := cacheServer(t, dir)
	health := func(want int, wantIn string) {
		t.Helper()
		if code, body := send(t, srv, "GET", "/healthz", "", ""); code != want || !strings.Contains(body, wantIn) {
			t.Errorf("healthz: %d %s, want %d with %q", code, body, want, wantIn)
		}
	}
	if why := declareOver(t, srv, 1, tun("lab-1", 1)); why != "" {
		t.Fatalf("cache error %q on a writable state dir", why)
	}
	health(http.StatusOK, `"ready"`)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	if why := declareOver(t, srv, 2, tun("lab-1", 1), tun("lab-1", 2)); !strings.Contains(why, "write cache") {
		t.Errorf("cache error %q, want the write's", why)
	}
	health(http.StatusServiceUnavailable, "write cache")

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if why := declareOver(t, srv, 3, tun("lab-1", 1), tun("lab-1", 2)); why != "" {
		t.Errorf("cache error %q once the state dir is back", why)
	}
	health(http.StatusOK, `"ready"`)
	if cf, err := readCache(dir); err != nil || cf.Generation != 3 || len(cf.Tunnels) != 2 {
		t.Errorf("cache %+v, %v: want generation 3 with 2 tunnels", cf, err)
	}
}

// TestFullStateDirNeverRestoresOlderState fills a tiny tmpfs state dir: the
// write of a newer state fails, so the older cache is removed and a restart
// restores nothing rather than the older state; once there is room, the
// health pass writes the cache again and /healthz is ready.
func TestFullStateDirNeverRestoresOlderState(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs: needs root, skipped with -short")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	a, srv := cacheServer(t, dir)
	if why := declareOver(t, srv, 1, tun("lab-1", 1)); why != "" {
		t.Fatalf("cache error %q on an empty tmpfs", why)
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	many := []wire.DeclaredTunnel{tun("lab-1", 1), tun("lab-1", 2)}
	if why := declareOver(t, srv, 2, many...); !strings.Contains(why, "no space left") {
		t.Fatalf("cache error %q, want no space left", why)
	}
	if cf, err := readCache(dir); err != nil || cf.Generation != 0 || len(cf.Tunnels) != 0 {
		t.Errorf("after the failed write the cache holds %+v, %v; want none (generation 1's is older than the host)", cf, err)
	}

	restarted := newConverger(fabrictest.New(), runtimetest.New(), dir, 1450, generations{maxJump: DefaultMaxGenerationJump}, quiet(), newMetrics())
	if err := restarted.restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(restarted.held.tunnels); n != 0 {
		t.Errorf("a restart restored %d tunnels of an older state", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := a.conv.repair(t.Context(), "health"); err != nil {
		t.Fatal(err)
	}
	if code, body := send(t, srv, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("healthz once there is room: %d %s", code, body)
	}
	if cf, err := readCache(dir); err != nil || cf.Generation != 2 || len(cf.Tunnels) != len(many) {
		t.Errorf("cache %d tunnels at generation %d, %v: want %d at 2", len(cf.Tunnels), cf.Generation, err, len(many))
	}
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
