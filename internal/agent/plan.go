package agent

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/wire"
)

// nodePort is a node interface's port as the agent keeps it on the bridge.
type nodePort struct {
	Lab, Node, Iface string
	Tag              int
	MTU              int
}

func (p nodePort) owner() fabric.Owner {
	return fabric.Owner{Lab: p.Lab, Node: p.Node, Iface: p.Iface}
}

// tunnelPlan is what planTunnels decides: the change set, the result each
// tunnel gets if the change set applies, and the orphans it removes.
type tunnelPlan struct {
	plan    fabric.Plan
	results []wire.TunnelResult
	// changed marks results whose status depends on Apply succeeding.
	changed map[string]bool
	orphans []string
}

// planTunnels decides, without touching anything, what makes obs hold the
// tunnels (DESIGN §6 rules 3, 4 and 6). Orphans are owned tunnel ports of a
// lab in scope that no tunnel declares; with removeOrphans false (start-up
// restore, repair) none are removed.
func planTunnels(tunnels []wire.DeclaredTunnel, scope map[string]bool, obs fabric.Observed, defaultMTU int, removeOrphans bool) tunnelPlan {
	tp := tunnelPlan{changed: map[string]bool{}, plan: fabric.Plan{Retag: map[string]int{}}}
	declared := map[string]bool{}
	for _, t := range tunnels {
		declared[t.PortName] = true
		res := wire.TunnelResult{LinkID: t.LinkID, LabID: t.LabID, PortName: t.PortName}
		status, changed, reason := planTunnel(&tp.plan, t, obs, defaultMTU)
		res.Status = status
		switch status {
		case wire.StatusError:
			res.Error = &reason
		case wire.StatusProtected:
		default:
			tag := t.ExpectedVLAN
			res.ActualVLAN = &tag
		}
		if changed {
			tp.changed[t.PortName] = true
		}
		tp.results = append(tp.results, res)
	}
	if removeOrphans {
		for _, name := range slices.Sorted(maps.Keys(obs.Ports)) {
			p := obs.Ports[name]
			if declared[name] || !isTunnelPort(name, p) || !scope[p.Owner.Lab] {
				continue
			}
			tp.orphans = append(tp.orphans, name)
			tp.plan.DeletePorts = append(tp.plan.DeletePorts, name)
			if _, ok := obs.Devices[name]; ok {
				tp.plan.DeleteDevices = append(tp.plan.DeleteDevices, name)
			}
		}
	}
	return tp
}

// isTunnelPort reports whether a bridge port is one of netloom's tunnel
// ports: owned, for a link, not a node's.
func isTunnelPort(name string, p fabric.Port) bool {
	return p.Owned() && p.Owner.Link != "" && p.Owner.Node == "" && strings.HasPrefix(name, ident.VXLANPortPrefix)
}

// planTunnel adds to plan what one tunnel needs and says what its status
// will be and whether it depends on the plan applying.
func planTunnel(plan *fabric.Plan, t wire.DeclaredTunnel, obs fabric.Observed, defaultMTU int) (status string, changed bool, reason string) {
	if t.Protected() {
		return wire.StatusProtected, false, ""
	}
	if t.ExpectedVLAN == 0 {
		// A VXLAN port without a tag would be a trunk that bridges every
		// VLAN of the host into the tunnel (W-21).
		return wire.StatusError, false, "expected_vlan is 0: a VXLAN port is never created untagged"
	}
	port, hasPort := obs.Ports[t.PortName]
	if hasPort && !port.Owned() {
		return wire.StatusError, false, fmt.Sprintf("port %s exists on the bridge and is not netloom's", t.PortName)
	}
	if _, isLink := obs.Links[t.PortName]; isLink {
		if _, isDev := obs.Devices[t.PortName]; !isDev {
			return wire.StatusError, false, fmt.Sprintf("device %s exists and is not a VXLAN device", t.PortName)
		}
	}
	mtu := t.MTU
	if mtu == 0 {
		mtu = defaultMTU
	}
	local, lerr := netip.ParseAddr(t.LocalIP)
	remote, rerr := netip.ParseAddr(t.RemoteIP)
	if lerr != nil || rerr != nil {
		return wire.StatusError, false, fmt.Sprintf("addresses %q and %q: not IP addresses", t.LocalIP, t.RemoteIP)
	}
	want := fabric.Device{Name: t.PortName, VNI: uint32(t.VNI), MTU: mtu, Local: local, Remote: remote}
	dev, hasDev := obs.Devices[t.PortName]
	devOK := hasDev && dev.SameTunnel(want) && dev.MTU == mtu && dev.Up
	if !devOK {
		plan.Devices = append(plan.Devices, want)
	}
	if !hasPort {
		plan.AddPorts = append(plan.AddPorts, fabric.Port{
			Name: t.PortName, Tag: t.ExpectedVLAN,
			Owner: fabric.Owner{Lab: t.LabID, Link: t.LinkID},
		})
		return wire.StatusCreated, true, ""
	}
	if port.Tag != t.ExpectedVLAN {
		plan.Retag[t.PortName] = t.ExpectedVLAN
		return wire.StatusUpdated, true, ""
	}
	if !devOK {
		return wire.StatusUpdated, true, ""
	}
	return wire.StatusConverged, false, ""
}

// planNodePorts adds to plan what keeps the agent's node ports on the
// bridge with their tags: a port deleted from the bridge comes back while
// its veth exists; a drifted tag is set back.
func planNodePorts(plan *fabric.Plan, ports map[string]nodePort, obs fabric.Observed) {
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		want := ports[name]
		got, onBridge := obs.Ports[name]
		switch {
		case !onBridge:
			if _, exists := obs.Links[name]; exists {
				plan.AddPorts = append(plan.AddPorts, fabric.Port{Name: name, Tag: want.Tag, MTU: want.MTU, Owner: want.owner()})
			}
		case got.Owned() && got.Tag != want.Tag:
			if plan.Retag == nil {
				plan.Retag = map[string]int{}
			}
			plan.Retag[name] = want.Tag
		}
	}
}
