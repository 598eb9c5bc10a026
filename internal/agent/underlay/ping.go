package underlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// tries is how many echo requests one probe sends, spread over its timeout,
// so that a lost packet does not fail it.
const tries = 3

// pinger sends ICMP echo requests from one namespace and hands each reply
// to the probe waiting for it. Its raw socket sets DF and ignores the
// kernel's cached path MTU.
type pinger struct {
	conn *net.IPConn
	id   int

	mu sync.Mutex
	// mu guards the following.
	seq     int
	waiting map[int]chan<- struct{} // by sequence number
}

// listen opens a pinger in the namespace at path ("" for the caller's).
func listen(path string, id int) (*pinger, error) {
	var conn *net.IPConn
	err := nlns.Do(path, func() error {
		c, err := net.ListenIP("ip4:icmp", nil)
		if err != nil {
			return fmt.Errorf("open icmp socket: %w", err)
		}
		raw, err := c.SyscallConn()
		if err != nil {
			c.Close()
			return fmt.Errorf("icmp socket: %w", err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		}); err != nil || serr != nil {
			c.Close()
			return fmt.Errorf("set DF on icmp socket: %w", errors.Join(err, serr))
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	p := &pinger{conn: conn, id: id, waiting: map[int]chan<- struct{}{}}
	go p.read()
	return p, nil
}

func (p *pinger) close() { p.conn.Close() }

// read hands replies to their probes until the socket closes.
func (p *pinger) read() {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := icmp.ParseMessage(1, buf[:n]) // 1: ICMP for IPv4
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != p.id {
			continue
		}
		p.mu.Lock()
		ch := p.waiting[e.Seq]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// echo reports whether dst answered an echo request of size bytes (the
// whole IP packet) within timeout; it sends tries requests, spread over it.
func (p *pinger) echo(ctx context.Context, dst netip.Addr, size int, timeout time.Duration) bool {
	answered := make(chan struct{}, 1)
	var seqs []int
	defer func() {
		p.mu.Lock()
		for _, s := range seqs {
			delete(p.waiting, s)
		}
		p.mu.Unlock()
	}()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	next := time.NewTicker(timeout / tries)
	defer next.Stop()
	data := make([]byte, max(size-28, 8)) // 20 of IP header, 8 of ICMP
	for sent := 0; ; {
		if sent < tries {
			p.mu.Lock()
			p.seq = (p.seq + 1) & 0xffff
			seq := p.seq
			p.waiting[seq] = answered
			p.mu.Unlock()
			seqs = append(seqs, seq)
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: data}}
			if b, err := msg.Marshal(nil); err == nil {
				// A failed send is a lost probe: the next try, or the
				// timeout, tells.
				_, _ = p.conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()})
			}
			sent++
		}
		select {
		case <-answered:
			return true
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-next.C:
		}
	}
}
