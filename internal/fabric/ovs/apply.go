package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// Apply carries out p: kernel devices first (one netlink handle), then every
// bridge change in one OVSDB transaction, waiting for ovs-vswitchd, then the
// deletion of devices the bridge no longer holds. The plan is checked whole
// against the cache before anything changes.
func (d *Driver) Apply(ctx context.Context, p fabric.Plan) error {
	if p.Empty() {
		return nil
	}
	// Whatever happens, what Observe last read may be gone.
	defer d.forget()
	ports, br, err := d.bridgePorts(ctx)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := checkPlan(p, ports); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if d.ovsTunnels() {
		return d.applyOVS(ctx, p, ports, br)
	}
	h, err := nlns.NewHandle(d.cfg.Netns)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer h.Close()
	have, _, err := d.links.read()
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	// The userspace datapath never reopens a system port whose device was
	// deleted and made again: the port keeps a socket on the old ifindex
	// and passes nothing. Such ports leave the bridge first, in a
	// transaction of their own, and come back with the rest.
	reseat := reseatPorts(p.Devices, have, ports)
	if len(reseat) > 0 {
		ops, err := d.removePortsOps(br, reseat)
		if err != nil {
			return fmt.Errorf("apply: reseat ports: %w", err)
		}
		if err := d.transact(ctx, ops); err != nil {
			return fmt.Errorf("apply: reseat ports: %w", err)
		}
		for _, rp := range reseat {
			delete(ports, rp.Name)
			if tag, ok := p.Retag[rp.Name]; ok {
				rp.Tag = tag
			}
			p.AddPorts = append(p.AddPorts, fabric.Port{Name: rp.Name, Tag: rp.Tag, Owner: rp.Owner})
		}
	}
	failed, err := ensureDevices(h, p.Devices, have)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	ops, err := d.planOps(ctx, p, ports, br, failed, nil)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if len(ops) > 0 {
		if err := d.transact(ctx, ops); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if err := deleteDevices(h, d.cfg.Netns, p.DeleteDevices); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	// The link view takes in the notifications of what Apply changed, and
	// of what ovs-vswitchd changed applying it, now rather than at the next
	// Observe: a declaration of a thousand tunnels leaves some three
	// thousand, which made the next one, most often a no-op, slower.
	if _, err := d.links.refresh(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if len(failed) > 0 {
		return &fabric.PartialError{Failed: failed}
	}
	return nil
}

// applyOVS carries out p where tunnels are OVS VXLAN interfaces: a device
// of the plan is its port's interface type and options, so the whole plan
// is one OVSDB transaction and there is nothing to delete in the kernel.
// ovs-vswitchd changes a tunnel's options in place, so no port is
// reseated.
func (d *Driver) applyOVS(ctx context.Context, p fabric.Plan, ports map[string]cachedPort, br *vswitchd.Bridge) error {
	tunnels := make(map[string]fabric.Device, len(p.Devices))
	for _, dev := range p.Devices {
		tunnels[dev.Name] = dev
	}
	ops, err := d.planOps(ctx, p, ports, br, nil, tunnels)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if len(ops) > 0 {
		if err := d.transact(ctx, ops); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	return nil
}

// checkPlan refuses a plan that adds a port twice or touches a port netloom
// does not own, naming every such port.
func checkPlan(p fabric.Plan, ports map[string]cachedPort) error {
	var errs []error
	adding := map[string]bool{}
	for _, ap := range p.AddPorts {
		if _, ok := ports[ap.Name]; ok || adding[ap.Name] {
			errs = append(errs, fmt.Errorf("add port %s: it exists already", ap.Name))
		}
		adding[ap.Name] = true
		if ap.Tag < 1 || ap.Tag > 4094 {
			errs = append(errs, fmt.Errorf("add port %s: tag %d: want 1 to 4094", ap.Name, ap.Tag))
		}
	}
	owned := func(verb, name string) {
		if cp, ok := ports[name]; ok && !cp.Owned() {
			errs = append(errs, fmt.Errorf("%s port %s: %w", verb, name, errNotOwned))
		}
	}
	for _, name := range p.DeletePorts {
		owned("delete", name)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Retag)) {
		if tag := p.Retag[name]; tag < 1 || tag > 4094 {
			errs = append(errs, fmt.Errorf("retag port %s: tag %d: want 1 to 4094", name, tag))
		}
		owned("retag", name)
	}
	for _, name := range slices.Sorted(maps.Keys(p.SetMTU)) {
		owned("set mtu of", name)
	}
	return errors.Join(errs...)
}

// planOps builds the bridge operations of p, leaving out the ports of failed
// devices. Retags and MTU changes of ports that no longer exist are skipped:
// there is nothing left to change. tunnels, by port name, are OVS VXLAN
// interfaces to make or to set: an added port gets its tunnel's type and
// options, an existing one has them set.
func (d *Driver) planOps(ctx context.Context, p fabric.Plan, ports map[string]cachedPort, br *vswitchd.Bridge, failed map[string]error, tunnels map[string]fabric.Device) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	var err error
	brUUID := ""
	if br == nil {
		ops, err = d.createBridgeOps(ctx, ops)
		if err != nil {
			return nil, err
		}
		brUUID = "nlbr" // the named UUID createBridgeOps gives it
	} else {
		brUUID = br.UUID
	}
	var add []string
	for i, ap := range p.AddPorts {
		if failed[ap.Name] != nil {
			continue
		}
		tag := ap.Tag
		ifc := &vswitchd.Interface{UUID: fmt.Sprintf("nlif%d", i), Name: ap.Name}
		if ap.MTU > 0 {
			mtu := ap.MTU
			ifc.MTURequest = &mtu
		}
		if dev, ok := tunnels[ap.Name]; ok {
			ifc.Type, ifc.Options = vxlanType, tunnelOptions(dev)
		}
		port := &vswitchd.Port{UUID: fmt.Sprintf("nlport%d", i), Name: ap.Name, Interfaces: []string{ifc.UUID}, Tag: &tag, ExternalIDs: marks(ap.Owner)}
		for _, m := range []model.Model{ifc, port} { // Create takes one table per call
			o, err := d.ovs.Create(m)
			if err != nil {
				return nil, fmt.Errorf("add port %s: %w", ap.Name, err)
			}
			for _, op := range o {
				op.Row = compactRow(op.Row)
				ops = append(ops, op)
			}
		}
		add = append(add, port.UUID)
	}
	for _, dev := range p.Devices {
		cp, ok := ports[dev.Name]
		if _, isTunnel := tunnels[dev.Name]; !isTunnel || !ok || cp.ifaceUUID == "" {
			continue
		}
		row := &vswitchd.Interface{UUID: cp.ifaceUUID, Type: vxlanType, Options: tunnelOptions(dev)}
		o, err := d.ovs.Where(row).Update(row, &row.Type, &row.Options)
		if err != nil {
			return nil, fmt.Errorf("set tunnel %s: %w", dev.Name, err)
		}
		ops = append(ops, o...)
	}
	var del []string
	for _, name := range p.DeletePorts {
		if cp, ok := ports[name]; ok {
			del = append(del, cp.uuid)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Retag)) {
		cp, ok := ports[name]
		if !ok || cp.Tag == p.Retag[name] {
			continue
		}
		tag := p.Retag[name]
		row := &vswitchd.Port{UUID: cp.uuid, Tag: &tag}
		o, err := d.ovs.Where(row).Update(row, &row.Tag)
		if err != nil {
			return nil, fmt.Errorf("retag port %s: %w", name, err)
		}
		ops = append(ops, o...)
	}
	for _, name := range slices.Sorted(maps.Keys(p.SetMTU)) {
		cp, ok := ports[name]
		if !ok || cp.ifaceUUID == "" {
			continue
		}
		mtu := p.SetMTU[name]
		row := &vswitchd.Interface{UUID: cp.ifaceUUID, MTURequest: &mtu}
		o, err := d.ovs.Where(row).Update(row, &row.MTURequest)
		if err != nil {
			return nil, fmt.Errorf("set mtu of port %s: %w", name, err)
		}
		ops = append(ops, o...)
	}
	if len(add) > 0 || len(del) > 0 {
		bridge := &vswitchd.Bridge{UUID: brUUID}
		var muts []model.Mutation
		if len(del) > 0 {
			muts = append(muts, model.Mutation{Field: &bridge.Ports, Mutator: ovsdb.MutateOperationDelete, Value: del})
		}
		if len(add) > 0 {
			muts = append(muts, model.Mutation{Field: &bridge.Ports, Mutator: ovsdb.MutateOperationInsert, Value: add})
		}
		o, err := d.ovs.Where(bridge).Mutate(bridge, muts...)
		if err != nil {
			return nil, fmt.Errorf("change ports of %s: %w", d.cfg.Bridge, err)
		}
		ops = append(ops, o...)
	}
	return ops, nil
}

// compactRow returns a copy of row sized to what it holds. libovsdb sizes
// a new row for every column of its table, some forty for Interface, though
// a port sets three or four: at a thousand ports the operations, held
// through the transaction, took 4.6 MB of heap, and 1.7 MB compacted.
func compactRow(row ovsdb.Row) ovsdb.Row {
	out := make(ovsdb.Row, len(row))
	maps.Copy(out, row)
	return out
}

// reseatPorts returns the bridge ports whose device Apply makes anew: it is
// missing, or differs in what only recreation changes.
func reseatPorts(want []fabric.Device, have map[string]fabric.Device, ports map[string]cachedPort) []cachedPort {
	var out []cachedPort
	for _, w := range want {
		cp, onBridge := ports[w.Name]
		cur, exists := have[w.Name]
		if onBridge && cp.Owned() && (!exists || !cur.SameTunnel(w)) {
			out = append(out, cp)
		}
	}
	return out
}

// removePortsOps removes ports from the bridge.
func (d *Driver) removePortsOps(br *vswitchd.Bridge, ports []cachedPort) ([]ovsdb.Operation, error) {
	uuids := make([]string, len(ports))
	for i, p := range ports {
		uuids[i] = p.uuid
	}
	bridge := &vswitchd.Bridge{UUID: br.UUID}
	return d.ovs.Where(bridge).Mutate(bridge, model.Mutation{Field: &bridge.Ports, Mutator: ovsdb.MutateOperationDelete, Value: uuids})
}

// ensureDevices makes every device in want exist as specified: created,
// adopted when identical, updated in place when only MTU or state differ,
// recreated when the tunnel differs. A device that fails is reported in
// failed and the others go on; err is for a failure that stops everything.
func ensureDevices(h *netlink.Handle, want []fabric.Device, have map[string]fabric.Device) (failed map[string]error, err error) {
	failed = map[string]error{}
	for _, w := range want {
		if err := ensureDevice(h, w, have); err != nil {
			failed[w.Name] = err
		}
	}
	return failed, nil
}

func ensureDevice(h *netlink.Handle, w fabric.Device, have map[string]fabric.Device) error {
	cur, exists := have[w.Name]
	if exists && !cur.SameTunnel(w) {
		if err := h.LinkDel(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Index: cur.Ifindex}}); err != nil {
			return fmt.Errorf("recreate device %s: %w", w.Name, err)
		}
		exists = false
	}
	if !exists {
		return addDevice(h, w)
	}
	link := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Index: cur.Ifindex, Name: cur.Name}}
	if w.MTU > 0 && cur.MTU != w.MTU {
		if err := h.LinkSetMTU(link, w.MTU); err != nil {
			return fmt.Errorf("set mtu of device %s: %w", w.Name, err)
		}
	}
	if !cur.Up {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set device %s up: %w", w.Name, err)
		}
	}
	return nil
}

// addDevice creates a VXLAN device without learning (the bridge does the
// learning) and without IPv6 addresses, then sets it up.
//
// A device is a layer-2 port of the bridge: an IPv6 link-local address
// would only send router solicitations and MLD reports into the tunnel.
// It also costs ovs-vswitchd dearly: each address brings a link-local
// route, and ovs-vswitchd re-reads every route, and for each one scans
// every address of the host, after any link change; with thousands of
// tunnels that is quadratic work on every change. The mode can only be set
// between creation and up (the kernel refuses it in the create request),
// so the device is made down first.
func addDevice(h *netlink.Handle, w fabric.Device) error {
	port := w.DstPort
	if port == 0 {
		port = fabric.DefaultDstPort
	}
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: w.Name, MTU: w.MTU},
		VxlanId:   int(w.VNI),
		SrcAddr:   w.Local.AsSlice(),
		Group:     w.Remote.AsSlice(),
		Port:      port,
		Learning:  false,
	}
	if err := h.LinkAdd(vx); err != nil {
		return fmt.Errorf("add device %s (vni %d): %w", w.Name, w.VNI, err)
	}
	if err := h.LinkSetIP6AddrGenMode(vx, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		return fmt.Errorf("turn off ipv6 addresses of device %s: %w", w.Name, err)
	}
	if err := h.LinkSetUp(vx); err != nil {
		return fmt.Errorf("set device %s up: %w", w.Name, err)
	}
	return nil
}

// deleteDevices deletes devices by name; one that is gone already is fine.
func deleteDevices(h *netlink.Handle, netns string, names []string) error {
	doomed := 0
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) || errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("find device %s: %w", name, err)
		}
		if _, ok := l.(*netlink.Vxlan); !ok {
			return fmt.Errorf("delete device %s: it is a %s, not a VXLAN device", name, l.Type())
		}
		if err := h.LinkSetGroup(l, nlns.DoomedGroup); err != nil {
			return fmt.Errorf("mark device %s for deletion: %w", name, err)
		}
		doomed++
	}
	if doomed == 0 {
		return nil
	}
	// One request for all: deleting them one by one costs an RCU grace
	// period each.
	return nlns.DeleteGroup(netns, nlns.DoomedGroup)
}
