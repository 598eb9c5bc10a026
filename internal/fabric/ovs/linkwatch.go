package ovs

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/fabric"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// linkWatch reports the kernel links that are deleted, made, renamed or
// changed in what the driver reads of them (state, MTU, tunnel), from the
// link notifications of the driver's namespace.
//
// It compares each notification with the link as it last knew it, so what
// changes nothing the driver reads is not reported: ovs-vswitchd turns
// promiscuous mode on for every port it adds and off for every port it
// removes, and reporting those made a repair follow every large
// declaration, with the next declaration waiting behind it. It decodes only
// the attributes it compares, with the link view's decoder.
type linkWatch struct {
	file   *os.File // the subscription, non-blocking, on Go's poller
	conn   syscall.RawConn
	closed atomic.Bool    // Close was called: a failed read is its doing
	links  map[int32]link // by ifindex, as last notified
	buf    []byte
}

// openLinkWatch subscribes to the link notifications of netns, then reads
// every link once as the starting point.
func openLinkWatch(netns string) (*linkWatch, error) {
	sock, err := nlns.SubscribeLinks(netns, linkBuffer)
	if err != nil {
		return nil, err
	}
	// A copy of the descriptor on Go's poller: a read waits without a
	// thread, and Close ends it.
	fd, err := unix.Dup(sock.GetFd())
	sock.Close()
	if err != nil {
		return nil, fmt.Errorf("watch links: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch links: %w", err)
	}
	w := &linkWatch{file: os.NewFile(uintptr(fd), "link notifications"), links: map[int32]link{}, buf: make([]byte, 64<<10)}
	if w.conn, err = w.file.SyscallConn(); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch links: %w", err)
	}
	links, err := nlns.ScanLinks(netns, decodeLink)
	if err != nil {
		w.Close()
		return nil, err
	}
	for _, l := range links {
		w.links[int32(l.Ifindex)] = l
	}
	return w, nil
}

// Close ends the subscription; a run in progress returns.
func (w *linkWatch) Close() error {
	w.closed.Store(true)
	return w.file.Close()
}

// run reports changes to fn until the watch is closed, which it returns
// as nil, or the notifications fail, lost ones included.
func (w *linkWatch) run(fn func(fabric.Event)) error {
	for {
		var msgs []syscall.NetlinkMessage
		var rerr error
		err := w.conn.Read(func(fd uintptr) bool {
			msgs, rerr = receiveLinks(int(fd), w.buf)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case err != nil && w.closed.Load():
			return nil
		case err != nil:
			return fmt.Errorf("read link notifications: %w", err)
		case rerr != nil:
			return rerr
		}
		for _, m := range msgs {
			c, err := applyLink(w.links, m)
			if err != nil {
				return err
			}
			report(c, fn)
		}
	}
}

// report turns a change into events: a link gone or renamed away is
// deleted under its old name; a new link, or one that changed in what the
// driver reads, is changed under its name.
func report(c linkChange, fn func(fabric.Event)) {
	switch {
	case c.gone:
		fn(fabric.Event{Kind: fabric.DeviceDeleted, Name: c.after.Name})
	case !c.had:
		fn(fabric.Event{Kind: fabric.DeviceChanged, Name: c.after.Name})
	case c.before != c.after:
		if c.before.Name != c.after.Name {
			fn(fabric.Event{Kind: fabric.DeviceDeleted, Name: c.before.Name})
		}
		fn(fabric.Event{Kind: fabric.DeviceChanged, Name: c.after.Name})
	}
}
