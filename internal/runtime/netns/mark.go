package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// nodeMark is what a node's namespace carries as the alias of its lo:
// "netloom/<lab>/<node>", and "@<host>" when the host's namespace has a
// name (the test bed's simulated hosts, which share /run/netns, see each
// other's namespaces and must not take them for their own).
func nodeMark(lab, node, host string) string {
	m := aliasPrefix + lab + "/" + node
	if host != "" {
		m += "@" + host
	}
	return m
}

// parseMark splits a node mark; ok is false for anything else. Lab and
// node names hold no "/" and no "@" (nameRE).
func parseMark(m string) (lab, node, host string, ok bool) {
	rest, ok := strings.CutPrefix(m, aliasPrefix)
	if !ok {
		return "", "", "", false
	}
	rest, host, _ = strings.Cut(rest, "@")
	lab, node, ok = strings.Cut(rest, "/")
	if !ok || !nameRE.MatchString(lab) || !nameRE.MatchString(node) {
		return "", "", "", false
	}
	return lab, node, host, true
}

// ownership is whose a namespace with a node's name is.
type ownership int

const (
	ownedHere      ownership = iota // the node's, made by this host
	ownedElsewhere                  // the node's, made by another host sharing /run/netns
	notOwned                        // unmarked, or marked as another node's
)

// seenMark is a namespace's mark as markOf read it, with the namespace's
// device and inode to tell it from a later one of the same name.
type seenMark struct {
	dev, ino uint64
	mark     string
}

// ownerOf tells whose the namespace ns is, for node lab/node, and returns
// its mark for the errors that name it.
func (r *Runtime) ownerOf(ns, lab, node string) (ownership, string, error) {
	mark, err := r.markOf(ns)
	if err != nil {
		return notOwned, "", err
	}
	ml, mn, host, ok := parseMark(mark)
	switch {
	case !ok || ml != lab || mn != node:
		return notOwned, mark, nil
	case host != r.self:
		return ownedElsewhere, mark, nil
	}
	return ownedHere, mark, nil
}

// markOf returns the mark of the namespace name. A mark is set when the
// namespace is made and never changes, so it is read once per namespace
// (by device and inode): List, which runs on every convergence, opens only
// the namespaces it has not seen. Inode numbers of freed namespaces are
// given out again, so the mark of a namespace this runtime deletes is
// forgotten then (DeleteNode), and List forgets those gone by the time it
// runs; a namespace deleted and made again under the same name by others
// between two Lists can still pass for the old one. A namespace that is gone, or whose file
// is no longer a mounted namespace (being deleted), wraps os.ErrNotExist.
func (r *Runtime) markOf(name string) (string, error) {
	st, err := mounted(name)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	seen, ok := r.marks[name]
	r.mu.Unlock()
	if ok && seen.dev == st.Dev && seen.ino == st.Ino {
		return seen.mark, nil
	}
	mark, err := ReadMark(name)
	if err != nil {
		if _, gone := mounted(name); gone != nil {
			return "", gone // deleted while it was read
		}
		return "", err
	}
	r.mu.Lock()
	r.marks[name] = seenMark{dev: st.Dev, ino: st.Ino, mark: mark}
	r.mu.Unlock()
	return mark, nil
}

// mounted stats a named namespace; one that is gone or no longer mounted
// (Delete unmounts, then removes the file) wraps os.ErrNotExist.
func mounted(name string) (unix.Stat_t, error) {
	var dir, st unix.Stat_t
	if err := unix.Stat(Dir, &dir); err != nil {
		return st, fmt.Errorf("namespace %s: %w", name, err)
	}
	if err := unix.Stat(filepath.Join(Dir, name), &st); err != nil {
		return st, fmt.Errorf("namespace %s: %w", name, err)
	}
	if st.Dev == dir.Dev {
		return st, fmt.Errorf("namespace %s: not mounted: %w", name, os.ErrNotExist)
	}
	return st, nil
}

// forgetMark drops the mark of the namespace name.
func (r *Runtime) forgetMark(name string) {
	r.mu.Lock()
	delete(r.marks, name)
	r.mu.Unlock()
}

// forgetMarks drops the marks of namespaces not in names.
func (r *Runtime) forgetMarks(names map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.marks {
		if !names[name] {
			delete(r.marks, name)
		}
	}
}

// errNotMine says why a namespace with a node's name is not taken as the
// node's: it is left alone.
func errNotMine(ns, mark string) error {
	if mark == "" {
		return fmt.Errorf("namespace %s exists and is not netloom's (unmarked): left alone", ns)
	}
	return fmt.Errorf("namespace %s exists and is not this node's (marked %q): left alone", ns, mark)
}
