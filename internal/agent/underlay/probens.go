package underlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/ident"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// deviceMTU is the probe device's MTU: above any size a link may need, so
// the probe, not the device, meets the underlay's limit.
const deviceMTU = 65000

// vxlanDFSet is VXLAN_DF_SET: the outer header carries DF.
const vxlanDFSet = 1

// ensure makes the probe namespace hold the probe device, up, with the
// data IP, and exactly peers.
func (p *Prober) ensure(peers []Peer) error {
	if err := nlns.Create(p.cfg.ProbeNetns); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nlns.WithHandle(p.cfg.ProbeNetns, func(h *netlink.Handle) error {
		dev, err := p.device(h)
		if err != nil {
			return err
		}
		if dev.Attrs().MTU != deviceMTU {
			if err := h.LinkSetMTU(dev, deviceMTU); err != nil {
				return fmt.Errorf("set mtu of %s: %w", ident.UnderlayDevice, err)
			}
		}
		if dev.Attrs().Flags&net.FlagUp == 0 {
			if err := h.LinkSetUp(dev); err != nil {
				return fmt.Errorf("set %s up: %w", ident.UnderlayDevice, err)
			}
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.cfg.DataIP.AsSlice(), Mask: net.CIDRMask(32, 32)}}
		if err := h.AddrReplace(dev, addr); err != nil {
			return fmt.Errorf("address %s: %w", ident.UnderlayDevice, err)
		}
		return syncPeers(h, dev.Attrs().Index, peers)
	})
}

// device returns the probe device, made anew when it is missing or was
// made for another data IP or port.
func (p *Prober) device(h *netlink.Handle) (netlink.Link, error) {
	l, err := h.LinkByName(ident.UnderlayDevice)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return nil, fmt.Errorf("find %s: %w", ident.UnderlayDevice, err)
	default:
		vx, ok := l.(*netlink.Vxlan)
		if ok && vx.VxlanId == ident.UnderlayVNI && vx.Port == p.cfg.Port && vx.SrcAddr.Equal(p.cfg.DataIP.AsSlice()) {
			return l, nil
		}
		if err := h.LinkDel(l); err != nil {
			return nil, fmt.Errorf("remove stale %s: %w", ident.UnderlayDevice, err)
		}
	}
	if err := p.addDevice(); err != nil {
		return nil, err
	}
	l, err = h.LinkByName(ident.UnderlayDevice)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", ident.UnderlayDevice, err)
	}
	return l, nil
}

// addDevice creates the probe device in the host's namespace, so that its
// UDP socket is the host's, and places it in the probe namespace in the
// same request. The request is raw because vishvananda/netlink does not
// set IFLA_VXLAN_DF.
func (p *Prober) addDevice() error {
	host := vnetns.None()
	if p.cfg.HostNetns != "" {
		var err error
		if host, err = nlns.Open(p.cfg.HostNetns); err != nil {
			return err
		}
		defer host.Close()
	}
	probe, err := nlns.Open(p.cfg.ProbeNetns)
	if err != nil {
		return err
	}
	defer probe.Close()
	sock, err := nl.GetNetlinkSocketAt(host, vnetns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket in the host namespace: %w", err)
	}
	defer sock.Close()
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(ident.UnderlayDevice)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(deviceMTU)))
	req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, ident.UnderlayMAC(p.cfg.DataIP)))
	req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(probe))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("vxlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_VXLAN_ID, nl.Uint32Attr(ident.UnderlayVNI))
	data.AddRtAttr(nl.IFLA_VXLAN_LOCAL, p.cfg.DataIP.AsSlice())
	data.AddRtAttr(nl.IFLA_VXLAN_PORT, binary.BigEndian.AppendUint16(nil, uint16(p.cfg.Port)))
	data.AddRtAttr(nl.IFLA_VXLAN_LEARNING, nl.Uint8Attr(0))
	data.AddRtAttr(unix.IFLA_VXLAN_DF, nl.Uint8Attr(vxlanDFSet))
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("add %s (vni %d, port %d): %w", ident.UnderlayDevice, ident.UnderlayVNI, p.cfg.Port, err)
	}
	return nil
}

// syncPeers gives each peer a /32 route, a permanent neighbour and an FDB
// entry on the probe device, and removes those of former peers.
func syncPeers(h *netlink.Handle, index int, peers []Peer) error {
	want := map[netip.Addr]bool{}
	macs := map[string]bool{}
	for _, peer := range peers {
		want[peer.IP] = true
		mac := ident.UnderlayMAC(peer.IP)
		macs[mac.String()] = true
		ip := peer.IP.AsSlice()
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: ip, HardwareAddr: mac}); err != nil {
			return fmt.Errorf("neighbour %s: %w", peer.IP, err)
		}
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: ip, HardwareAddr: mac}); err != nil {
			return fmt.Errorf("fdb entry of %s: %w", peer.IP, err)
		}
		// The MTU is locked so the kernel learns no path MTU on it: a
		// learnt one would have the kernel fragment its echo replies, and
		// a short path would pass.
		route := &netlink.Route{LinkIndex: index, Dst: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK,
			MTU: deviceMTU, MTULock: true}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("route to %s: %w", peer.IP, err)
		}
	}
	link := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Index: index}}
	routes, err := nlns.Dump("routes", func() ([]netlink.Route, error) { return h.RouteList(link, netlink.FAMILY_V4) })
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok && !want[ip.Unmap()] {
			if err := h.RouteDel(&r); err != nil {
				return fmt.Errorf("remove route to %s: %w", ip, err)
			}
		}
	}
	for _, family := range []int{netlink.FAMILY_V4, unix.AF_BRIDGE} {
		neighs, err := nlns.Dump("neighbours", func() ([]netlink.Neigh, error) { return h.NeighList(index, family) })
		if err != nil {
			return err
		}
		for _, n := range neighs {
			ip, _ := netip.AddrFromSlice(n.IP)
			stale := family == netlink.FAMILY_V4 && !want[ip.Unmap()] || family == unix.AF_BRIDGE && !macs[n.HardwareAddr.String()]
			if stale {
				if err := h.NeighDel(&n); err != nil {
					return fmt.Errorf("remove neighbour %s: %w", n.IP, err)
				}
			}
		}
	}
	return nil
}
