package agent

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/netloom/netloom/internal/wire"
)

// nodeFilesDir holds a node's shipped files on this host. Names that are
// path elements of their own ("." and "..") have none: they would lead out
// of it.
func nodeFilesDir(stateDir, lab, node string) (string, error) {
	for _, n := range []string{lab, node} {
		if n == "" || n == "." || n == ".." || strings.ContainsRune(n, '/') {
			return "", fmt.Errorf("%q: not a name a node's files can be kept under", n)
		}
	}
	return filepath.Join(stateDir, "nodes", lab, node), nil
}

// writeNodeFiles writes the files a node's relative binds name below the
// state directory, one folder per bind (so no path in a lab file decides
// where on the host anything is written), and returns the node's settings
// with those binds' sources pointing there. The files are rewritten in
// place, so a running container that binds one sees its content.
func writeNodeFiles(stateDir, lab, node string, c *wire.Container, files []wire.File) (*wire.Container, error) {
	if c == nil || len(c.Binds) == 0 {
		return c, nil
	}
	dir, err := nodeFilesDir(stateDir, lab, node)
	if err != nil {
		return nil, err
	}
	out := *c
	out.Binds = make([]string, len(c.Binds))
	for i, bs := range c.Binds {
		b, err := wire.ParseBind(bs)
		if err != nil {
			return nil, fmt.Errorf("node %s: binds[%d]: %w", node, i, err)
		}
		if !b.Relative() {
			out.Binds[i] = bs
			continue
		}
		base := filepath.Join(dir, "bind"+strconv.Itoa(i))
		src := path.Clean(b.Source)
		written := 0
		for _, f := range files {
			var rel string
			switch {
			case f.Path == src:
				rel = path.Base(src)
				b.Source = filepath.Join(base, rel)
			case strings.HasPrefix(f.Path, src+"/"):
				rel = strings.TrimPrefix(f.Path, src+"/")
				b.Source = base
			default:
				continue
			}
			if !filepath.IsLocal(rel) {
				return nil, fmt.Errorf("node %s: file %s: not a path below its bind", node, f.Path)
			}
			if err := writeFile(filepath.Join(base, rel), f.Data); err != nil {
				return nil, fmt.Errorf("node %s: %w", node, err)
			}
			written++
		}
		if written == 0 {
			return nil, fmt.Errorf("node %s: binds[%d]: %s was not shipped with the declaration", node, i, b.Source)
		}
		out.Binds[i] = b.String()
	}
	return &out, nil
}

func writeFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// removeNodeFiles removes a node's shipped files, and its lab's folder when
// that is left empty.
func removeNodeFiles(stateDir, lab, node string) error {
	dir, err := nodeFilesDir(stateDir, lab, node)
	if err != nil {
		return nil // nothing was ever written for it
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove files of node %s: %w", node, err)
	}
	_ = os.Remove(filepath.Dir(dir)) // fails while the lab's other nodes keep files: theirs
	return nil
}
