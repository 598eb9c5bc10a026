// Package fabric is the seam between the agent's convergence logic and a
// host's data plane: the types of what a host holds (Observed), of a change
// set (Plan), and the Driver interface that reads and applies them. Drivers
// live in sub-folders: ovs/ (Open vSwitch over OVSDB plus kernel VXLAN
// devices over netlink), later linux/.
//
// A driver only reads and applies: it never decides what should exist. The
// agent plans (a pure function of a declaration and an Observed) and the
// driver carries the plan out: one batched read per Observe, one OVSDB
// transaction and one netlink handle per Apply.
//
// Invariants every driver keeps:
//   - a failed read is an error, never an empty Observed (W-6, W-18, W-25);
//   - Apply touches no port that lacks netloom's ownership mark, except to
//     create it with one;
//   - Apply returns only once the data plane has taken the change.
package fabric

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Driver reads and changes one host's data plane.
type Driver interface {
	// Observe reads the bridge's ports and the kernel's VXLAN devices in one
	// batched read. The Observed is read-only: a driver may hand out the
	// same maps again while nothing changed.
	Observe(ctx context.Context) (Observed, error)
	// Apply carries out a plan in one OVSDB transaction and one netlink
	// handle.
	Apply(ctx context.Context, p Plan) error
	// Watch calls fn for every port, interface or device that disappears
	// or changes, until ctx ends.
	Watch(ctx context.Context, fn func(Event)) error
}

// Owner holds netloom's ownership marks of a port. A port without them has
// the zero Owner and is never touched.
type Owner struct {
	Lab   string
	Link  string // for tunnel and linked ports
	Node  string // for node ports
	Iface string // for node ports
}

// Port is an OVS port with its one interface.
type Port struct {
	Name string
	// Tag is the access VLAN; 0 means none.
	Tag int
	// MTU is the interface's MTU as observed, or the MTU to request when
	// adding; 0 means unknown, or no request.
	MTU int
	// Type is the interface type: "" for a system device, "internal", ….
	Type string
	// Ofport is the OpenFlow port number; 0 while unknown, -1 when OVS
	// could not open the interface.
	Ofport int
	// Ifindex is the kernel index of the interface; 0 while unknown.
	Ifindex int
	// LinkState is "up", "down", or "" while unknown.
	LinkState string
	// Error is OVS's complaint about the interface, if any.
	Error string
	// Owner is netloom's mark; zero for a port that is not netloom's.
	Owner Owner
}

// Owned reports whether the port carries netloom's ownership mark.
func (p Port) Owned() bool { return p.Owner != Owner{} }

// Device is a VXLAN tunnel: a kernel VXLAN device, or the driver's own
// kind of tunnel with the same fields.
type Device struct {
	Name    string
	VNI     uint32
	Local   netip.Addr
	Remote  netip.Addr
	DstPort int // 4789 when 0 in a plan
	// MTU 0 in a plan keeps the kernel default; observed, 0 is a tunnel
	// with no MTU of its own (an OVS tunnel), which carries what the
	// underlay carries.
	MTU int
	// MaxMTU, observed, is the largest frame a tunnel with no MTU of its
	// own carries: what its underlay interface carries less VXLAN's
	// overhead, as it does not fragment; 0 when unknown or not so.
	MaxMTU int
	// Ifindex and Up are observed only.
	Ifindex int
	Up      bool
}

// SameTunnel reports whether d and o carry the same tunnel: what cannot be
// changed on a live device (VNI, addresses, UDP port). MTU and state can.
func (d Device) SameTunnel(o Device) bool {
	return d.VNI == o.VNI && d.Local == o.Local && d.Remote == o.Remote && d.dstPort() == o.dstPort()
}

func (d Device) dstPort() int {
	if d.DstPort == 0 {
		return DefaultDstPort
	}
	return d.DstPort
}

// DefaultDstPort is the IANA VXLAN port.
const DefaultDstPort = 4789

// Observed is one consistent read of a host's data plane.
type Observed struct {
	// Bridge is the bridge's name; BridgeExists is false when it is
	// missing (then Ports is empty and Apply recreates it).
	Bridge       string
	BridgeExists bool
	// Ports are the bridge's ports by name, the bridge's own internal port
	// excluded.
	Ports map[string]Port
	// Devices are the kernel's VXLAN devices by name, on the bridge or not.
	Devices map[string]Device
	// Links are every kernel link by name, with its ifindex: whether a node
	// port's veth still exists.
	Links map[string]int
}

// Plan is a change set. Apply carries it out as a whole: devices first, then
// one transaction for every bridge change, then deletion of devices.
type Plan struct {
	// Devices are created, or adopted when an identical one exists; one
	// that differs in SameTunnel terms is recreated, one that differs in
	// MTU or state is updated in place.
	Devices []Device
	// AddPorts are added to the bridge with their tag, MTU request and
	// owner; a port of the same name must not exist.
	AddPorts []Port
	// DeletePorts are removed from the bridge; each must be owned.
	DeletePorts []string
	// Retag sets the access tag of owned ports (port name → tag).
	Retag map[string]int
	// SetMTU sets the MTU request of owned ports (port name → MTU).
	SetMTU map[string]int
	// DeleteDevices are removed after the bridge no longer holds them.
	DeleteDevices []string
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return p.Changes() == 0
}

// Changes counts the plan's changes, one per device, port or setting.
func (p Plan) Changes() int {
	return len(p.Devices) + len(p.AddPorts) + len(p.DeletePorts) + len(p.Retag) + len(p.SetMTU) + len(p.DeleteDevices)
}

// PartialError reports the devices of a plan that could not be made, with
// why; their ports were not added, and the rest of the plan was applied.
type PartialError struct {
	Failed map[string]error
}

func (e *PartialError) Error() string {
	names := slices.Sorted(maps.Keys(e.Failed))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = e.Failed[n].Error()
	}
	return fmt.Sprintf("%d devices failed: %s", len(names), strings.Join(parts, "; "))
}

// EventKind says what happened to a port or device.
type EventKind string

// Event kinds.
const (
	PortDeleted   EventKind = "port_deleted"
	PortChanged   EventKind = "port_changed"
	DeviceDeleted EventKind = "device_deleted"
	DeviceChanged EventKind = "device_changed"
)

// Event is one change a driver saw on the host.
type Event struct {
	Kind EventKind
	Name string // port, interface or device name
}
