package netns

import (
	"fmt"
	"unsafe"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ethtoolValue is the kernel's struct ethtool_value, what the get and set
// commands of one feature exchange.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is a struct ifreq whose union holds a pointer, as SIOCETHTOOL
// takes it; data stays an unsafe.Pointer so the collector sees it.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte // the union is 24 bytes
}

// FullChecksums turns off transmit checksum offload on the named
// interfaces of the namespace ns, through one socket made in it, so that
// the kernel completes every checksum before a packet leaves them; an
// interface whose offload is off already is not written to. The kernel
// turns off what depends on it (TSO) too. where names the namespace in
// errors, e.g. "node r1".
func FullChecksums(ns vnetns.NsHandle, where string, ifaces []string) error {
	fd, err := ethtoolSocket(ns)
	if err != nil {
		return fmt.Errorf("turn off tx checksum offload in %s: %w", where, err)
	}
	defer unix.Close(fd)
	for _, name := range ifaces {
		on, err := ethtool(fd, name, unix.ETHTOOL_GTXCSUM, 0)
		if err == nil && on != 0 {
			_, err = ethtool(fd, name, unix.ETHTOOL_STXCSUM, 0)
		}
		if err != nil {
			return fmt.Errorf("turn off tx checksum offload of %s in %s: %w", name, where, err)
		}
	}
	return nil
}

// ethtoolSocket opens a socket inside the namespace ns: ethtool commands
// through it reach that namespace's interfaces. The caller closes it.
func ethtoolSocket(ns vnetns.NsHandle) (int, error) {
	fd := -1
	err := doAt(ns, "for ethtool", func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return fmt.Errorf("ethtool socket: %w", err)
		}
		return nil
	})
	return fd, err
}

// ethtool runs one ethtool_value command on the named interface through
// the socket fd, and returns the value the kernel answers with.
func ethtool(fd int, name string, cmd, data uint32) (uint32, error) {
	if len(name) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q: too long", name)
	}
	v := ethtoolValue{cmd: cmd, data: data}
	ifr := ifreqData{data: unsafe.Pointer(&v)}
	copy(ifr.name[:], name)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return 0, errno
	}
	return v.data, nil
}
