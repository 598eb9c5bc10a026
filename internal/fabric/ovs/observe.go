package ovs

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/wire"
)

// Observe reads the bridge's ports from the monitor cache, once an echo has
// proved the connection alive, and the kernel's links from the link view.
// When neither changed since the last Observe, and no Apply ran since, it
// returns the same Observed again: its maps are shared, read-only.
//
// The cache's changes are counted by its event handler, which runs a
// moment after the cache takes them; a change the count missed is one
// that happened as Observe ran, and its event brings a repair. Apply's
// own changes always make the next Observe read.
func (d *Driver) Observe(ctx context.Context) (fabric.Observed, error) {
	if err := d.ovs.Echo(ctx); err != nil {
		return fabric.Observed{}, fmt.Errorf("observe: ovsdb %s: %w", d.cfg.OVSDB, err)
	}
	rows := d.rows.Load()
	links, err := d.links.refresh()
	if err != nil {
		return fabric.Observed{}, fmt.Errorf("observe: %w", err)
	}
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	if last.valid && last.rows == rows && last.links == links {
		return last.obs, nil
	}
	obs, err := d.observe(ctx)
	if err != nil {
		return fabric.Observed{}, err
	}
	d.mu.Lock()
	d.last = observation{obs: obs, rows: rows, links: links, valid: true}
	d.mu.Unlock()
	return obs, nil
}

// forget makes the next Observe read anew.
func (d *Driver) forget() {
	d.mu.Lock()
	d.last = observation{}
	d.mu.Unlock()
}

// observe builds an Observed from the cache and the link view.
func (d *Driver) observe(ctx context.Context) (fabric.Observed, error) {
	obs := fabric.Observed{Bridge: d.cfg.Bridge, Ports: map[string]fabric.Port{}}
	ports, _, err := d.bridgePorts(ctx)
	if err != nil {
		return fabric.Observed{}, fmt.Errorf("observe: %w", err)
	}
	if ports != nil {
		obs.BridgeExists = true
		for _, p := range ports {
			obs.Ports[p.Name] = p.Port
		}
	}
	obs.Devices, obs.Links, err = d.links.read()
	if err != nil {
		return fabric.Observed{}, fmt.Errorf("observe: %w", err)
	}
	if d.ovsTunnels() {
		egress := map[string]bool{}
		for _, p := range ports {
			if name := p.status[egressKey]; name != "" {
				egress[name] = true
			}
		}
		obs.Devices = ovsTunnels(ports, d.links.mtus(egress))
	}
	return obs, nil
}

// egressKey is the interface status key in which ovs-vswitchd names the
// interface a tunnel's packets leave by, once it has a route to the remote.
const egressKey = "tunnel_egress_iface"

// ovsTunnels returns the bridge's OVS VXLAN interfaces as devices, given
// the MTUs of the interfaces their packets leave by. Such an interface has
// no MTU of its own (0); it carries frames up to its egress interface's MTU
// less the encapsulation, and never fragments. It is up once ovs-vswitchd
// has taken it.
func ovsTunnels(ports map[string]cachedPort, egressMTU map[string]int) map[string]fabric.Device {
	devs := map[string]fabric.Device{}
	for name, p := range ports {
		if p.Type != vxlanType {
			continue
		}
		dev := fabric.Device{Name: name, Up: p.LinkState == "up"}
		dev.Local, _ = netip.ParseAddr(p.options["local_ip"])
		dev.Remote, _ = netip.ParseAddr(p.options["remote_ip"])
		if key, err := strconv.ParseUint(p.options["key"], 10, 32); err == nil {
			dev.VNI = uint32(key)
		}
		dev.DstPort = fabric.DefaultDstPort
		if port, err := strconv.Atoi(p.options["dst_port"]); err == nil {
			dev.DstPort = port
		}
		if mtu := egressMTU[p.status[egressKey]]; mtu > 0 {
			dev.MaxMTU = mtu - wire.VXLANOverhead
		}
		devs[name] = dev
	}
	return devs
}

// vxlanType is the interface type of OVS's own VXLAN ports.
const vxlanType = "vxlan"

// tunnelOptions are the interface options of an OVS VXLAN port for dev.
func tunnelOptions(dev fabric.Device) map[string]string {
	if dev.DstPort == 0 {
		dev.DstPort = fabric.DefaultDstPort
	}
	return map[string]string{
		"local_ip":  dev.Local.String(),
		"remote_ip": dev.Remote.String(),
		"key":       strconv.FormatUint(uint64(dev.VNI), 10),
		"dst_port":  strconv.Itoa(dev.DstPort),
	}
}

// cachedPort is a fabric.Port with the row UUIDs Apply needs.
type cachedPort struct {
	fabric.Port
	uuid      string
	ifaceUUID string
	options   map[string]string // the interface's, the cache's own map
	status    map[string]string // likewise
}

// bridgePorts returns the bridge's ports by name, without the bridge's own,
// or nil when the bridge is missing; and the bridge row.
func (d *Driver) bridgePorts(ctx context.Context) (map[string]cachedPort, *vswitchd.Bridge, error) {
	br, err := d.bridge(ctx)
	if err != nil || br == nil {
		return nil, nil, err
	}
	// The cache's own rows, not copies: copying every Port and Interface
	// model costs ~50 ms at 1000 ports. They are read-only here; the cache
	// replaces, never mutates, a row it updates.
	cache := d.ovs.Cache()
	if cache == nil {
		return nil, nil, fmt.Errorf("read ports: no monitor cache")
	}
	portRows, ifaceRows := cache.Table("Port"), cache.Table("Interface")
	if portRows == nil || ifaceRows == nil {
		return nil, nil, fmt.Errorf("read ports: Port and Interface are not monitored")
	}
	ifaces := ifaceRows.RowsShallow()
	onBridge := make(map[string]bool, len(br.Ports))
	for _, u := range br.Ports {
		onBridge[u] = true
	}
	out := make(map[string]cachedPort, len(br.Ports))
	for _, m := range portRows.RowsShallow() {
		p, ok := m.(*vswitchd.Port)
		if !ok || !onBridge[p.UUID] || p.Name == d.cfg.Bridge {
			continue
		}
		cp := cachedPort{Port: fabric.Port{Name: p.Name, Owner: ownerOf(p.ExternalIDs)}, uuid: p.UUID}
		if p.Tag != nil {
			cp.Tag = *p.Tag
		}
		// netloom's ports have one interface; for others the first tells
		// enough. A missing interface row leaves the fields unknown.
		if len(p.Interfaces) > 0 {
			if ifc, ok := ifaces[p.Interfaces[0]].(*vswitchd.Interface); ok {
				cp.ifaceUUID = ifc.UUID
				cp.Type = ifc.Type
				cp.MTU = deref(ifc.MTU)
				cp.Ofport = deref(ifc.Ofport)
				cp.Ifindex = deref(ifc.Ifindex)
				cp.LinkState = deref(ifc.LinkState)
				cp.Error = deref(ifc.Error)
				cp.options, cp.status = ifc.Options, ifc.Status
			}
		}
		out[p.Name] = cp
	}
	return out, br, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ownerOf reads netloom's marks; any port without the owner key is not
// netloom's, whatever else it carries.
func ownerOf(ids map[string]string) fabric.Owner {
	if ids[ident.OwnerKey] != ident.OwnerValue {
		return fabric.Owner{}
	}
	return fabric.Owner{Lab: ids[ident.LabKey], Link: ids[ident.LinkKey], Node: ids[ident.NodeKey], Iface: ids[ident.IfaceKey]}
}

// marks writes an owner as external_ids.
func marks(o fabric.Owner) map[string]string {
	ids := map[string]string{ident.OwnerKey: ident.OwnerValue}
	for k, v := range map[string]string{ident.LabKey: o.Lab, ident.LinkKey: o.Link, ident.NodeKey: o.Node, ident.IfaceKey: o.Iface} {
		if v != "" {
			ids[k] = v
		}
	}
	return ids
}

// link is what Observe reads of a kernel link: its name and ifindex, and,
// when it is a VXLAN device, the device.
type link struct {
	fabric.Device
	vxlan bool
}

// decodeLink reads a link's name, ifindex, state and MTU, and a VXLAN
// device's tunnel, from its RTM_NEWLINK message, and nothing else. It
// walks the attributes in place: a declaration of a thousand tunnels brings
// thousands of notifications of some fifty attributes each, and copying
// them out (nl.ParseRouteAttr) was most of what the agent allocated.
func decodeLink(msg []byte) (link, error) {
	if len(msg) < unix.SizeofIfInfomsg {
		return link{}, fmt.Errorf("link message of %d bytes", len(msg))
	}
	info := nl.DeserializeIfInfomsg(msg)
	l := link{Device: fabric.Device{Ifindex: int(info.Index), Up: info.Flags&unix.IFF_UP != 0}}
	var linkinfo []byte
	err := eachAttr(msg[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			l.Name = unix.ByteSliceToString(v)
		case unix.IFLA_MTU:
			l.MTU = int(u32(v))
		case unix.IFLA_LINKINFO:
			linkinfo = v
		}
	})
	if err == nil && linkinfo != nil {
		l.vxlan, err = decodeVxlan(linkinfo, &l.Device)
	}
	if err != nil {
		return link{}, fmt.Errorf("link %d: %w", info.Index, err)
	}
	return l, nil
}

// decodeVxlan reads the tunnel of a VXLAN device from its IFLA_LINKINFO
// into d, and reports whether the link is one.
func decodeVxlan(linkinfo []byte, d *fabric.Device) (bool, error) {
	var kind, data []byte
	err := eachAttr(linkinfo, func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_INFO_KIND:
			kind = v
		case unix.IFLA_INFO_DATA:
			data = v
		}
	})
	if err != nil || unix.ByteSliceToString(kind) != "vxlan" {
		return false, err
	}
	err = eachAttr(data, func(typ uint16, v []byte) {
		switch typ {
		case unix.IFLA_VXLAN_ID:
			d.VNI = u32(v)
		case unix.IFLA_VXLAN_LOCAL, unix.IFLA_VXLAN_LOCAL6:
			d.Local = addr(v)
		case unix.IFLA_VXLAN_GROUP, unix.IFLA_VXLAN_GROUP6:
			d.Remote = addr(v)
		case unix.IFLA_VXLAN_PORT:
			if len(v) >= 2 {
				d.DstPort = int(binary.BigEndian.Uint16(v))
			}
		}
	})
	return err == nil, err
}

// eachAttr calls fn with the type and value of every netlink attribute in
// b, in place, without copying; a malformed attribute ends the walk with
// an error.
func eachAttr(b []byte, fn func(typ uint16, value []byte)) error {
	for len(b) >= unix.SizeofRtAttr {
		n := int(nl.NativeEndian().Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return fmt.Errorf("netlink attribute of %d bytes in %d", n, len(b))
		}
		fn(nl.NativeEndian().Uint16(b[2:])&nl.NLA_TYPE_MASK, b[unix.SizeofRtAttr:n])
		b = b[min(len(b), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return nil
}

// u32 reads a host-order attribute; a short one reads as 0.
func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return nl.NativeEndian().Uint32(b)
}

// addr reads an address attribute, an IPv4-mapped one as IPv4; a malformed
// one reads as the zero address.
func addr(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap()
}
