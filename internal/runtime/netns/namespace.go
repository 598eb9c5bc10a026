package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where `ip netns` and this package keep named namespaces.
const Dir = "/run/netns"

// onSpareThread runs fn on a thread of its own, which fn may move into
// another namespace for good: left locked, it is discarded when fn returns,
// so no other goroutine ever runs in the wrong namespace. Never on the main
// thread, though: the runtime cannot discard that one, and the process would
// stay in the node's namespace, holding it alive and showing in it as one
// of its processes.
func onSpareThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// Held by this goroutine, the main thread cannot run the next one.
		done := make(chan struct{})
		go func() {
			onSpareThread(fn)
			close(done)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	fn()
}

// unshareNamed makes the namespace, on a spare thread that moves into it.
func unshareNamed(name string, errc chan<- error) {
	onSpareThread(func() {
		ns, err := vnetns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("create netns %s: %w", name, err)
			return
		}
		ns.Close()
		errc <- nil
	})
}

// Create makes a named network namespace with its loopback up. It fails with
// an error wrapping os.ErrExist if the name is taken.
func Create(name string) error { return create(name, "") }

// CreateMarked is Create, with mark as the alias of the namespace's lo: the
// mark says whose the namespace is (see ReadMark). A namespace that could
// not be marked is removed.
func CreateMarked(name, mark string) error { return create(name, mark) }

func create(name, mark string) error {
	errc := make(chan error, 1)
	go unshareNamed(name, errc)
	if err := <-errc; err != nil {
		return err
	}
	err := WithHandle(name, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find lo in %s: %w", name, err)
		}
		if mark != "" {
			if err := h.LinkSetAlias(lo, mark); err != nil {
				return fmt.Errorf("mark %s: %w", name, err)
			}
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up in %s: %w", name, err)
		}
		return nil
	})
	if err != nil && mark != "" {
		if derr := Delete(name); derr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
		}
	}
	return err
}

// ReadMark returns the alias of a named namespace's lo, where CreateMarked
// put its mark ("" for none).
func ReadMark(name string) (string, error) {
	mark := ""
	err := WithHandle(name, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find lo in %s: %w", name, err)
		}
		mark = lo.Attrs().Alias
		return nil
	})
	return mark, err
}

// Delete removes a named namespace; one that is already gone is not an
// error. Its links go with it once no process holds it any more.
func Delete(name string) error {
	path := filepath.Join(Dir, name)
	// EINVAL: the file is there but no longer a mount point.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// Exists reports whether a named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(filepath.Join(Dir, name))
	return err == nil
}

// Open opens a named namespace; the caller closes the handle.
func Open(name string) (vnetns.NsHandle, error) {
	ns, err := vnetns.GetFromName(name)
	if err != nil {
		return 0, fmt.Errorf("open netns %s: %w", name, err)
	}
	return ns, nil
}

// NewHandle returns a netlink handle bound to the named namespace, or to the
// caller's namespace for "". The caller closes it.
func NewHandle(name string) (*netlink.Handle, error) {
	if name == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink handle: %w", err)
		}
		return h, nil
	}
	ns, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return h, nil
}

// WithHandle runs fn with a netlink handle bound to the named namespace.
func WithHandle(name string, fn func(*netlink.Handle) error) error {
	h, err := NewHandle(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

// List returns the names of all named namespaces.
func List() ([]string, error) {
	entries, err := os.ReadDir(Dir)
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

// dumpAttempts bounds how often Dump takes a dump again after an
// interrupted one.
const dumpAttempts = 20

// Dump runs one netlink dump (links, addresses, routes, neighbours) and
// takes it again while it comes back interrupted (NLM_F_DUMP_INTR, which
// vishvananda/netlink returns as ErrDumpInterrupted with partial results):
// such an answer may miss objects or hold gone ones, and while nodes are
// made and removed in parallel it is common. After dumpAttempts tries the
// error wraps netlink.ErrDumpInterrupted. Every dump netloom takes goes
// through here.
func Dump[T any](what string, dump func() ([]T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		got, err := dump()
		if err == nil {
			return got, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		if attempt == dumpAttempts {
			return nil, fmt.Errorf("list %s: %d tries: %w", what, attempt, err)
		}
	}
}

// LinkList dumps a namespace's links (see Dump).
func LinkList(h *netlink.Handle) ([]netlink.Link, error) {
	return Dump("links", h.LinkList)
}

// ScanLinks dumps the named namespace's links ("" for the caller's) and
// turns each into a T with decode, which gets the link's message undecoded:
// its ifinfomsg, then its attributes. An interrupted dump is taken again,
// as Dump does. LinkList decodes every attribute of every link, the
// statistics by reflection, which is most of the time a dump of a thousand
// links takes; a caller that needs a few attributes reads only those.
func ScanLinks[T any](name string, decode func(msg []byte) (T, error)) ([]T, error) {
	sock, err := socket(name)
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	return Dump("links", func() ([]T, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		var out []T
		var derr error
		err := req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWLINK, func(msg []byte) bool {
			var t T
			if t, derr = decode(msg); derr != nil {
				return false
			}
			out = append(out, t)
			return true
		})
		if derr != nil {
			return nil, derr
		}
		return out, err
	})
}

// SubscribeLinks opens a socket in the named namespace ("" for the
// caller's) that receives the kernel's link notifications, with a receive
// buffer of size bytes. The caller reads and closes it.
func SubscribeLinks(name string, size int) (*nl.NetlinkSocket, error) {
	ns, err := openOrOwn(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	sock, err := nl.SubscribeAt(ns, vnetns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		return nil, fmt.Errorf("subscribe to links in %q: %w", name, err)
	}
	if err := sock.SetReceiveBufferSize(size, true); err != nil {
		sock.Close()
		return nil, fmt.Errorf("subscribe to links in %q: %w", name, err)
	}
	return sock, nil
}

// socket opens a route netlink socket in the named namespace, "" for the
// caller's.
func socket(name string) (*nl.NetlinkSocket, error) {
	ns, err := openOrOwn(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	sock, err := nl.GetNetlinkSocketAt(ns, vnetns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in %q: %w", name, err)
	}
	return sock, nil
}

// openOrOwn opens the named namespace, or returns vnetns.None() for "",
// which the nl package takes for the caller's; closing None is harmless.
func openOrOwn(name string) (vnetns.NsHandle, error) {
	if name == "" {
		return vnetns.None(), nil
	}
	return Open(name)
}

// DoomedGroup is the link group of links that are about to be deleted
// together by DeleteGroup; netloom uses no other group.
const DoomedGroup = 0x6e6c // "nl"

// DeleteGroup deletes every link of the named namespace ("" for the
// caller's) in group with one request: the kernel unregisters them in one
// batch, one RCU grace period for all instead of one each (about 20 ms a
// device).
func DeleteGroup(name string, group uint32) error {
	sock, err := socket(name)
	if err != nil {
		return err
	}
	defer sock.Close()
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link group %d: %w", group, err)
	}
	return nil
}

// EndProcesses ends every process in the named namespace, as `ip netns
// pids` finds them (by the namespace's device and inode): SIGTERM, then
// SIGKILL to those still running after grace. It returns how many it found.
// A process that holds the namespace would keep it, and the interfaces in
// it, alive after Delete.
func EndProcesses(name string, grace time.Duration) (int, error) {
	pids, err := processesIn(name)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	signal := func(sig unix.Signal) error {
		for _, pid := range pids {
			if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("end process %d in %s: %w", pid, name, err)
			}
		}
		return nil
	}
	if err := signal(unix.SIGTERM); err != nil {
		return len(pids), err
	}
	deadline := time.Now().Add(grace)
	for {
		pids = slices.DeleteFunc(pids, func(pid int) bool { return !ProcessRunning(pid) })
		if len(pids) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return len(pids), signal(unix.SIGKILL)
}

// processesIn lists the processes in the named namespace, but this one.
func processesIn(name string) ([]int, error) {
	var ns unix.Stat_t
	if err := unix.Stat(filepath.Join(Dir, name), &ns); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue // gone meanwhile, or a kernel thread
		}
		if st.Dev == ns.Dev && st.Ino == ns.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ProcessRunning reports whether pid is a process that has not exited; a
// zombie whose parent has not reaped it yet has exited.
func ProcessRunning(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name's closing parenthesis.
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z'
}

// Do runs fn on a spare thread inside the namespace at path, or here for
// "". A socket fn makes belongs to that namespace for good.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	ns, err := vnetns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	return doAt(ns, path, fn)
}

// doAt runs fn on a spare thread inside the open namespace ns, which name
// stands for in errors.
func doAt(ns vnetns.NsHandle, name string, fn func() error) error {
	errc := make(chan error, 1)
	go onSpareThread(func() {
		if err := vnetns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		errc <- fn()
	})
	return <-errc
}
