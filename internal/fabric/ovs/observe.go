package ovs

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
	"github.com/netloom/netloom/internal/ident"
)

// Observe reads the bridge's ports from the monitor cache, once an echo has
// proved the connection alive, and the kernel's links from the link view.
func (d *Driver) Observe(ctx context.Context) (fabric.Observed, error) {
	if err := d.ovs.Echo(ctx); err != nil {
		return fabric.Observed{}, fmt.Errorf("observe: ovsdb %s: %w", d.cfg.OVSDB, err)
	}
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
	return obs, nil
}

// cachedPort is a fabric.Port with the row UUIDs Apply needs.
type cachedPort struct {
	fabric.Port
	uuid      string
	ifaceUUID string
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
// device's tunnel, from its RTM_NEWLINK message, and nothing else.
func decodeLink(msg []byte) (link, error) {
	if len(msg) < unix.SizeofIfInfomsg {
		return link{}, fmt.Errorf("link message of %d bytes", len(msg))
	}
	info := nl.DeserializeIfInfomsg(msg)
	attrs, err := nl.ParseRouteAttr(msg[unix.SizeofIfInfomsg:])
	if err != nil {
		return link{}, fmt.Errorf("link %d: %w", info.Index, err)
	}
	l := link{Device: fabric.Device{Ifindex: int(info.Index), Up: info.Flags&unix.IFF_UP != 0}}
	for _, a := range attrs {
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case unix.IFLA_IFNAME:
			l.Name = unix.ByteSliceToString(a.Value)
		case unix.IFLA_MTU:
			l.MTU = int(u32(a.Value))
		case unix.IFLA_LINKINFO:
			if l.vxlan, err = decodeVxlan(a.Value, &l.Device); err != nil {
				return link{}, fmt.Errorf("link %d: %w", info.Index, err)
			}
		}
	}
	return l, nil
}

// decodeVxlan reads the tunnel of a VXLAN device from its IFLA_LINKINFO
// into d, and reports whether the link is one.
func decodeVxlan(linkinfo []byte, d *fabric.Device) (bool, error) {
	infos, err := nl.ParseRouteAttr(linkinfo)
	if err != nil {
		return false, err
	}
	var kind string
	var data []byte
	for _, a := range infos {
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case unix.IFLA_INFO_KIND:
			kind = unix.ByteSliceToString(a.Value)
		case unix.IFLA_INFO_DATA:
			data = a.Value
		}
	}
	if kind != "vxlan" {
		return false, nil
	}
	attrs, err := nl.ParseRouteAttr(data)
	if err != nil {
		return false, err
	}
	for _, a := range attrs {
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case unix.IFLA_VXLAN_ID:
			d.VNI = u32(a.Value)
		case unix.IFLA_VXLAN_LOCAL, unix.IFLA_VXLAN_LOCAL6:
			d.Local = addr(a.Value)
		case unix.IFLA_VXLAN_GROUP, unix.IFLA_VXLAN_GROUP6:
			d.Remote = addr(a.Value)
		case unix.IFLA_VXLAN_PORT:
			if len(a.Value) >= 2 {
				d.DstPort = int(binary.BigEndian.Uint16(a.Value))
			}
		}
	}
	return true, nil
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
