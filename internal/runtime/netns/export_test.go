package netns

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// TxChecksumOn reports whether the named interface of the named namespace
// offloads transmit checksums, read with the ioctl Wire sets it with.
func TxChecksumOn(nsName, iface string) (bool, error) {
	ns, err := Open(nsName)
	if err != nil {
		return false, err
	}
	defer ns.Close()
	fd, err := ethtoolSocket(ns)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	on, err := ethtool(fd, iface, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil {
		return false, fmt.Errorf("read tx checksum offload of %s in %s: %w", iface, nsName, err)
	}
	return on != 0, nil
}

// KeepsMark reports whether the runtime keeps a mark it read of the
// namespace name.
func (r *Runtime) KeepsMark(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.marks[name]
	return ok
}
