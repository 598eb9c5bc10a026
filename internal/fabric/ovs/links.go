package ovs

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/fabric"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// linkBuffer is the receive buffer of the link notifications: a
// declaration of a thousand tunnels makes thousands at once, and an
// overflow costs a dump.
const linkBuffer = 16 << 20

// linkView is the kernel's links in the driver's namespace, kept from one
// dump by the link notifications that follow it. A dump has the kernel fill
// every attribute of every link, about 2 KB each: at a thousand tunnels,
// most of a no-op declaration. The kernel queues a notification before the
// change it reports returns, so a view that has read every queued one is
// as current as a dump; it reads them when asked, not in the background,
// so none can be in flight. A lost notification (the buffer overflowed)
// takes a dump again.
type linkView struct {
	netns string

	mu sync.Mutex
	// mu guards the following.
	sock  *nl.NetlinkSocket // nil until the first read, and after a loss
	links map[int32]link    // by ifindex: a rename keeps it
	buf   []byte
	// version counts the changes taken in: a reader that saw it unchanged
	// has nothing new to read.
	version uint64
}

// read returns the VXLAN devices by name and every link's ifindex by name.
func (v *linkView) read() (map[string]fabric.Device, map[string]int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.update(); err != nil {
		return nil, nil, err
	}
	devs := map[string]fabric.Device{}
	all := make(map[string]int, len(v.links))
	for _, l := range v.links {
		all[l.Name] = l.Ifindex
		if l.vxlan {
			devs[l.Name] = l.Device
		}
	}
	return devs, all, nil
}

// mtus returns the MTU of each named link that exists, as of the last
// read.
func (v *linkView) mtus(names map[string]bool) map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]int, len(names))
	for _, l := range v.links {
		if names[l.Name] {
			out[l.Name] = l.MTU
		}
	}
	return out
}

// refresh takes in the queued notifications and returns the view's
// version.
func (v *linkView) refresh() (uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.update()
	return v.version, err
}

// errLost reports notifications lost to an overflow.
var errLost = errors.New("link notifications lost")

// update reads the queued notifications, after a dump when there is no
// subscription; an overflow starts again, once.
func (v *linkView) update() error {
	for attempt := 0; ; attempt++ {
		if v.sock == nil {
			if err := v.resync(); err != nil {
				return err
			}
		}
		err := v.drain()
		if err == nil {
			return nil
		}
		v.close()
		if !errors.Is(err, errLost) || attempt > 0 {
			return err
		}
	}
}

// resync subscribes, then dumps: a change between the two is in both, and
// the notification, applied after the dump, holds the later state.
func (v *linkView) resync() error {
	sock, err := nlns.SubscribeLinks(v.netns, linkBuffer)
	if err != nil {
		return err
	}
	links, err := nlns.ScanLinks(v.netns, decodeLink)
	if err != nil {
		sock.Close()
		return err
	}
	v.links = make(map[int32]link, len(links))
	for _, l := range links {
		v.links[int32(l.Ifindex)] = l
	}
	v.sock = sock
	v.version++
	return nil
}

// drain applies every queued notification, without waiting for more.
func (v *linkView) drain() error {
	if v.buf == nil {
		v.buf = make([]byte, 64<<10) // a notification is one datagram of a few KB
	}
	for {
		msgs, err := receiveLinks(v.sock.GetFd(), v.buf)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := v.apply(m); err != nil {
				return err
			}
		}
	}
}

// receiveLinks reads one datagram of link notifications from fd into buf,
// without waiting: unix.EAGAIN says there is none, errLost that some were
// lost to an overflow.
func receiveLinks(fd int, buf []byte) ([]syscall.NetlinkMessage, error) {
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil, unix.EAGAIN
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			return nil, errLost
		case err != nil:
			return nil, fmt.Errorf("read link notifications: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("read link notifications: %w", err)
		}
		return msgs, nil
	}
}

// apply takes one notification into the view.
func (v *linkView) apply(m syscall.NetlinkMessage) error {
	c, err := applyLink(v.links, m)
	if c.after.Ifindex != 0 {
		v.version++
	}
	return err
}

// linkChange is what one notification did to a map of links: the link
// before (had says whether there was one) and after; when gone, after is
// the link as it was deleted.
type linkChange struct {
	before, after link
	had, gone     bool
}

// applyLink takes one notification into links and returns what it changed;
// a notification that is not about a link itself changes nothing. Only
// AF_UNSPEC ones are: a bridge reports its ports' changes as AF_BRIDGE
// RTM_NEWLINK and RTM_DELLINK of links that stay.
func applyLink(links map[int32]link, m syscall.NetlinkMessage) (linkChange, error) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return linkChange{}, nil
	}
	info := nl.DeserializeIfInfomsg(m.Data)
	if info.Family != unix.AF_UNSPEC {
		return linkChange{}, nil
	}
	if m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK {
		return linkChange{}, nil
	}
	l, err := decodeLink(m.Data)
	if err != nil {
		return linkChange{}, fmt.Errorf("read link notifications: %w", err)
	}
	c := linkChange{after: l, gone: m.Header.Type == unix.RTM_DELLINK}
	c.before, c.had = links[info.Index]
	if c.gone {
		delete(links, info.Index)
	} else {
		links[info.Index] = l
	}
	return c, nil
}

// close drops the subscription; the next read dumps again.
func (v *linkView) close() {
	if v.sock != nil {
		v.sock.Close()
		v.sock, v.links = nil, nil
	}
}

// Close ends the view's subscription.
func (v *linkView) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.close()
}
