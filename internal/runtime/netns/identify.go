package netns

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Identify returns the name of the named namespace this process runs in,
// as `ip netns identify` does (by device and inode), or "" when it runs in
// an unnamed one, such as the host's own.
func Identify() (string, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return "", fmt.Errorf("identify netns: %w", err)
	}
	names, err := List()
	if err != nil {
		return "", err
	}
	for _, name := range names {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(Dir, name), &st) != nil {
			continue // deleted meanwhile, or not a namespace
		}
		if st.Dev == self.Dev && st.Ino == self.Ino {
			return name, nil
		}
	}
	return "", nil
}
