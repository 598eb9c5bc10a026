package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// cacheName is the declared-state cache in the state dir, as in the original.
const cacheName = "declared_overlay_state.json"

// cacheFile is the cache's format: the original's plus generation, the
// host's nodes, and the digest and declared labs of the last whole host
// declaration, which a restore holds again when its nodes and tunnels are
// exactly what the cache lists.
type cacheFile struct {
	DeclaredAt   time.Time             `json:"declared_at"`
	Generation   int64                 `json:"generation"`
	Tunnels      []wire.DeclaredTunnel `json:"tunnels"`
	Nodes        []wire.DeclaredNode   `json:"nodes,omitempty"`
	Digest       string                `json:"digest,omitempty"`
	DeclaredLabs []string              `json:"declared_labs,omitempty"`
}

// writeCache replaces the cache atomically: a temp file in the same folder,
// fsynced, renamed over the old one, and the folder fsynced, so a crash
// leaves either the old cache or the new one, never a torn file.
func writeCache(dir string, c cacheFile) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, cacheName+".tmp*")
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, cacheName)); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// removeCache removes the cache file; a missing one is not an error.
func removeCache(dir string) error {
	err := os.Remove(filepath.Join(dir, cacheName))
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) { // no folder, no cache
		return fmt.Errorf("remove stale cache: %w", err)
	}
	return nil
}

// readCache loads the cache; a missing one is empty, a corrupt or invalid
// one an error.
func readCache(dir string) (cacheFile, error) {
	data, err := os.ReadFile(filepath.Join(dir, cacheName))
	if errors.Is(err, os.ErrNotExist) {
		return cacheFile{}, nil
	}
	if err != nil {
		return cacheFile{}, fmt.Errorf("read cache: %w", err)
	}
	var c cacheFile
	if err := json.Unmarshal(data, &c); err != nil {
		return cacheFile{}, fmt.Errorf("read cache: %w", err)
	}
	req := wire.HostDeclaration{Nodes: c.Nodes, Tunnels: c.Tunnels}
	if err := req.Validate(); err != nil {
		return cacheFile{}, fmt.Errorf("read cache: %w", err)
	}
	return c, nil
}
