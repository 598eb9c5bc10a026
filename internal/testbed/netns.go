package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` and vishvananda/netns keep named namespaces.
const netnsDir = "/run/netns"

// createNetns makes a named network namespace with its loopback up.
func createNetns(name string) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is moved into the new namespace and never moved back:
		// leaving it locked makes the runtime discard it when this goroutine
		// ends, so no other goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		ns, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("create netns %s: %w", name, err)
			return
		}
		ns.Close()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return err
	}
	return withHandle(name, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find lo in %s: %w", name, err)
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up in %s: %w", name, err)
		}
		return nil
	})
}

// deleteNetns removes a named namespace; one that is already gone is not an
// error. Its links go with it once no process holds it any more.
func deleteNetns(name string) error {
	path := filepath.Join(netnsDir, name)
	// EINVAL: the file is there but no longer a mount point.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// openNetns opens a named namespace; the caller closes the handle.
func openNetns(name string) (netns.NsHandle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return 0, fmt.Errorf("open netns %s: %w", name, err)
	}
	return ns, nil
}

// withHandle runs fn with a netlink handle bound to the named namespace.
func withHandle(name string, fn func(*netlink.Handle) error) error {
	ns, err := openNetns(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// listNetns returns the names of all named namespaces.
func listNetns() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
