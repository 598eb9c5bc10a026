package controller

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// Management networks, containerlab's mgmt: every node of a lab with a
// management interface gets eth0 with an address in the lab's subnet, on
// one tag per host; every host of the lab gets an interface on that tag
// (the host pseudo-node's) with an address from the top of the subnet, so
// that the host reaches its nodes; and every host but the lab's first, the
// hub, a tunnel to the hub. A star, not a mesh: one segment, no loop.

// labHost is a lab on one host.
type labHost struct{ lab, host string }

// mgmtSubnet resolves the management subnet of a lab being applied, given
// the one it has (current, "" for a new lab) and the other labs: the one
// its file asks for, which may overlap no other lab's; else the one it has;
// else containerlab's default or, when another lab has it, the next /24
// that is free. A node asking for an address without the file asking for a
// subnet asks for it in the default one.
func mgmtSubnet(lab topology.Lab, current string, others []store.Lab) (string, error) {
	overlaps := func(p netip.Prefix) (store.Lab, bool) {
		for _, o := range others {
			op, err := topology.MgmtSubnet(o.MgmtSubnet)
			if o.ID != lab.Name && err == nil && op.Overlaps(p) {
				return o, true
			}
		}
		return store.Lab{}, false
	}
	asked := lab.Mgmt.Subnet
	if asked == "" && slices.ContainsFunc(lab.Nodes, func(n topology.Node) bool { return n.MgmtIPv4 != "" }) {
		asked = topology.DefaultMgmtSubnet
	}
	if asked != "" {
		p, err := topology.MgmtSubnet(asked)
		if err != nil {
			return "", fmt.Errorf("mgmt.ipv4-subnet %q: %w", asked, err) // validated with the file: a lab given as JSON
		}
		if o, ok := overlaps(p); ok {
			return "", fmt.Errorf("mgmt.ipv4-subnet %s overlaps %s, the management subnet of lab %s: give this lab another (mgmt: {ipv4-subnet: …}): %w",
				p, o.MgmtSubnet, o.Name, store.ErrConflict)
		}
		return p.String(), nil
	}
	if p, err := topology.MgmtSubnet(current); err == nil {
		if _, ok := overlaps(p); !ok {
			return current, nil
		}
	}
	// 172.20.20.0/24, 172.20.21.0/24, … to the end of 172.16.0.0/12.
	for p := netip.MustParsePrefix(topology.DefaultMgmtSubnet); netip.MustParsePrefix("172.16.0.0/12").Contains(p.Addr()); p = nextPrefix(p) {
		if _, ok := overlaps(p); !ok {
			return p.String(), nil
		}
	}
	return "", fmt.Errorf("no free /24 in 172.16.0.0/12 for the management network: give the lab an mgmt.ipv4-subnet: %w", store.ErrConflict)
}

// nextPrefix is the prefix of the same length right after p.
func nextPrefix(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(topology.LastAddr(p).Next(), p.Bits())
}

// usable reports whether a can be a node's or a host's address in p.
func usable(p netip.Prefix, a netip.Addr) bool {
	return a.IsValid() && p.Contains(a) && a != p.Addr() && a != topology.LastAddr(p)
}

// allocateMgmt gives each running lab's management network what it lacks,
// after allocate gave the links their tags and VNIs: every node with a
// management interface an address (the one its file asks for, else the one
// it had, else the lowest free from the subnet's second address, as
// containerlab numbers them), and every host that runs its nodes a segment:
// a tag free on that host, an address from the top of the subnet and, on
// every host but the lab's first (the hub), a VNI for the tunnel to the
// hub. Segments of hosts a lab left, and of labs that do not run, go. It
// updates d in place and returns what must be stored.
func allocateMgmt(d *store.Desired) (out store.MgmtAllocation, problems []error) {
	running := map[string]bool{}
	subnets := map[string]netip.Prefix{}
	for _, l := range d.Labs {
		running[l.ID] = runs(l.State)
		if p, err := topology.MgmtSubnet(l.MgmtSubnet); err == nil && running[l.ID] {
			subnets[l.ID] = p
		}
	}
	used := map[string]map[int]bool{}
	hold := func(host string, tag int) {
		if used[host] == nil {
			used[host] = map[int]bool{}
		}
		used[host][tag] = true
	}
	vnis := map[int]bool{}
	for _, ls := range d.Links {
		for _, s := range sides(ls) {
			if s.host != "" && s.tag != nil {
				hold(s.host, *s.tag)
			}
		}
		if ls.VNI != nil {
			vnis[*ls.VNI] = true
		}
	}
	members := map[string][]int{} // by lab, the nodes with a management interface
	hostsOf := map[string][]string{}
	wanted := map[labHost]bool{}
	for i, n := range d.Nodes {
		if _, ok := subnets[n.Lab]; !ok {
			continue
		}
		if !topology.HasMgmt(n.Kind, n.NetworkMode) {
			if n.MgmtAddress != "" {
				d.Nodes[i].MgmtAddress = ""
				out.Addresses = append(out.Addresses, store.NodeAddress{Lab: n.Lab, Node: n.Name})
			}
			continue
		}
		members[n.Lab] = append(members[n.Lab], i)
		if k := (labHost{n.Lab, n.PlacedOn}); n.PlacedOn != "" && !wanted[k] {
			wanted[k] = true
			hostsOf[n.Lab] = append(hostsOf[n.Lab], n.PlacedOn)
		}
	}
	held := map[labHost]store.MgmtSegment{}
	for _, m := range d.Mgmt {
		k := labHost{m.LabID, m.Host}
		if !wanted[k] {
			out.Drop = append(out.Drop, m)
			continue
		}
		held[k] = m
		hold(m.Host, m.Tag)
		if m.VNI != nil {
			vnis[*m.VNI] = true
		}
	}
	var segs []store.MgmtSegment
	for _, lab := range slices.Sorted(maps.Keys(subnets)) {
		p := subnets[lab]
		taken := map[netip.Addr]bool{}
		addr := map[int]netip.Addr{}
		// What the file asks for first, then what nodes had, then the rest.
		for pass := range 3 {
			next := p.Addr().Next().Next()
			for _, i := range members[lab] {
				n := d.Nodes[i]
				if _, ok := addr[i]; ok {
					continue
				}
				var a netip.Addr
				switch pass {
				case 0:
					a, _ = netip.ParseAddr(n.MgmtIPv4)
				case 1:
					a, _ = netip.ParseAddr(n.MgmtAddress)
				default:
					for usable(p, next) && taken[next] {
						next = next.Next()
					}
					a = next
					if !usable(p, a) {
						problems = append(problems, fmt.Errorf("node %s of %s: no free management address in %s", n.Name, lab, p))
						continue
					}
				}
				if usable(p, a) && !taken[a] {
					addr[i], taken[a] = a, true
				}
			}
		}
		for _, i := range members[lab] {
			n := &d.Nodes[i]
			a := ""
			if v, ok := addr[i]; ok {
				a = v.String()
			}
			if a != n.MgmtAddress {
				n.MgmtAddress = a
				out.Addresses = append(out.Addresses, store.NodeAddress{Lab: lab, Node: n.Name, Address: a})
			}
		}

		hosts := slices.Sorted(slices.Values(hostsOf[lab]))
		hostAddr := map[string]netip.Addr{}
		for _, h := range hosts { // a host keeps its address while no node asks for it
			if m, ok := held[labHost{lab, h}]; ok {
				if hp, err := netip.ParsePrefix(m.Address); err == nil && hp.Bits() == p.Bits() && usable(p, hp.Addr()) && !taken[hp.Addr()] {
					hostAddr[h], taken[hp.Addr()] = hp.Addr(), true
				}
			}
		}
		top := topology.LastAddr(p).Prev()
		for _, h := range hosts {
			if _, ok := hostAddr[h]; ok {
				continue
			}
			for usable(p, top) && taken[top] {
				top = top.Prev()
			}
			if !usable(p, top) {
				problems = append(problems, fmt.Errorf("lab %s: no free management address in %s for host %s", lab, p, h))
				continue
			}
			hostAddr[h], taken[top] = top, true
		}
		for i, h := range hosts {
			a, ok := hostAddr[h]
			if !ok {
				continue
			}
			old, had := held[labHost{lab, h}]
			seg := store.MgmtSegment{LabID: lab, Host: h, Address: netip.PrefixFrom(a, p.Bits()).String(), Tag: old.Tag, VNI: old.VNI,
				Status: old.Status, Error: old.Error, VerifiedAt: old.VerifiedAt}
			if !had {
				t, err := freeTag(used[h], h)
				if err != nil {
					problems = append(problems, fmt.Errorf("lab %s: management network: %w", lab, err))
					continue
				}
				hold(h, t)
				seg.Tag = t
			}
			switch {
			case i == 0:
				seg.VNI = nil // the hub: the others' tunnels end here
			case seg.VNI == nil:
				for probe := range vniProbes {
					if v := int(ident.VNIProbe(lab, ident.MgmtLink(h), probe)); !vnis[v] {
						vnis[v], seg.VNI = true, &v
						break
					}
				}
				if seg.VNI == nil {
					problems = append(problems, fmt.Errorf("lab %s: management tunnel of %s: %d VNIs from the first choice are taken", lab, h, vniProbes))
					continue
				}
			}
			if !had || seg.Address != old.Address || !equalPtr(seg.VNI, old.VNI) {
				seg.Status, seg.Error, seg.VerifiedAt = store.LinkPending, "", nil
				out.Segments = append(out.Segments, seg)
			}
			segs = append(segs, seg)
		}
	}
	for i, h := range segs {
		if h.VNI != nil {
			segs[i].Hub = hubOf(segs, h.LabID)
		}
	}
	d.Mgmt = segs
	return out, problems
}

// hubOf is the hub of a lab's management network: its segment without a
// VNI.
func hubOf(segs []store.MgmtSegment, lab string) string {
	for _, s := range segs {
		if s.LabID == lab && s.VNI == nil {
			return s.Host
		}
	}
	return ""
}

func equalPtr(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// freeTag is the lowest tag of the linked range that used does not hold
// (its zero value: no holder, or a count of 0).
func freeTag[V comparable](used map[int]V, host string) (int, error) {
	var free V
	for t := ident.LinkedTagMin; t <= ident.LinkedTagMax; t++ {
		if used[t] == free {
			return t, nil
		}
	}
	return 0, fmt.Errorf("no free tag in %d-%d on %s", ident.LinkedTagMin, ident.LinkedTagMax, host)
}

// mgmtMTU is the MTU of a lab's management network: what its tunnels carry,
// 1500 on one host.
func mgmtMTU(segs []store.MgmtSegment, underlay map[string]int) int {
	mtu := defaultMTU
	for _, s := range segs {
		if s.Hub != "" {
			m, _ := linkMTU(0, false, s.Hub, s.Host, underlay)
			mtu = min(mtu, m)
		}
	}
	return mtu
}

// declareMgmt adds each running lab's management network to the host
// declarations: eth0 of each node declared (nodes, by lab and node, its
// index in its host's declaration), the host's own interface, and the
// tunnels between each host and the hub.
func declareMgmt(d store.Desired, decls map[string]*wire.HostDeclaration, declared map[nodeKey]at, hostNode func(host, lab string) *wire.DeclaredNode) {
	byLab := map[string][]store.MgmtSegment{}
	seg := map[labHost]store.MgmtSegment{}
	for _, m := range d.Mgmt {
		byLab[m.LabID] = append(byLab[m.LabID], m)
		seg[labHost{m.LabID, m.Host}] = m
	}
	underlay, ips := map[string]int{}, map[string]string{}
	for _, h := range d.Hosts {
		underlay[h.Name], ips[h.Name] = h.UnderlayMTU, h.DataIP
	}
	mtus := map[string]int{}
	for lab, segs := range byLab {
		mtus[lab] = mgmtMTU(segs, underlay)
	}
	for _, n := range d.Nodes {
		p, ok := declared[nodeKey{n.Lab, n.Name}]
		s, inLab := seg[labHost{n.Lab, n.PlacedOn}]
		if !ok || !inLab || n.MgmtAddress == "" || p.host != n.PlacedOn {
			continue
		}
		hp, err := netip.ParsePrefix(s.Address)
		if err != nil {
			continue // written by allocateMgmt: never
		}
		dn := &decls[p.host].Nodes[p.i]
		dn.Interfaces = append(dn.Interfaces, wire.DeclaredInterface{Name: topology.MgmtIface, VLANTag: s.Tag, MTU: mtus[n.Lab],
			Addresses: []string{n.MgmtAddress + "/" + fmt.Sprint(hp.Bits())}})
	}
	for _, s := range d.Mgmt {
		// A spoke whose host is not being declared still has its
		// tunnel's end on the hub, when the hub is.
		if decls[s.Host] != nil {
			hn := hostNode(s.Host, s.LabID)
			hn.Interfaces = append(hn.Interfaces, wire.DeclaredInterface{Name: ident.MgmtIface(s.LabID), VLANTag: s.Tag, MTU: mtus[s.LabID],
				Addresses: []string{s.Address}})
		}
		if s.Hub == "" || s.VNI == nil {
			continue
		}
		hub := seg[labHost{s.LabID, s.Hub}]
		link := ident.MgmtLink(s.Host)
		for _, end := range []struct {
			host, peer string
			tag        int
		}{{s.Host, s.Hub, s.Tag}, {s.Hub, s.Host, hub.Tag}} {
			if decls[end.host] == nil || ips[end.peer] == "" {
				continue
			}
			decls[end.host].Tunnels = append(decls[end.host].Tunnels, wire.DeclaredTunnel{LinkID: link, LabID: s.LabID, VNI: *s.VNI,
				LocalIP: ips[end.host], RemoteIP: ips[end.peer], ExpectedVLAN: end.tag, PortName: ident.PortName(s.LabID, link), MTU: mtus[s.LabID]})
		}
	}
}

// mgmtStatus is a lab's management network on the host: up once its
// interface and its tunnels (to the hub, or on the hub to every other
// host) converged.
func (a *hostAnswer) mgmtStatus(s store.MgmtSegment, segs []store.MgmtSegment) (status, why string) {
	if a.unknown != "" {
		return store.LinkUnknown, a.unknown
	}
	if n, ok := a.nodes[nodeKey{s.LabID, wire.HostNode}]; ok && n.Status == wire.StatusError {
		return store.LinkError, fmt.Sprintf("%s: %s", a.host, text(n.Error))
	}
	name := ident.MgmtIface(s.LabID)
	ifc, ok := a.ifaces[ifaceKey{s.LabID, wire.HostNode, name}]
	switch {
	case !ok:
		return store.LinkUnknown, fmt.Sprintf("%s: no answer for %s", a.host, name)
	case ifc.Status == wire.StatusError:
		return store.LinkError, fmt.Sprintf("%s: %s: %s", a.host, name, text(ifc.Error))
	}
	status = store.LinkUp
	for _, o := range segs {
		if o.LabID != s.LabID || o.VNI == nil || o.Host != s.Host && o.Hub != s.Host {
			continue
		}
		switch st, w := a.tunnelEnd(s.LabID, ident.MgmtLink(o.Host)); {
		case st == store.LinkError:
			return st, w
		case st != store.LinkUp && status == store.LinkUp:
			status, why = st, w
		}
	}
	return status, why
}

// observeMgmt turns the answers of a round into the management segments
// whose state changed, of the labs in labs (every lab when nil), and
// updates d to match. A segment whose host converged is an error still
// while the underlay does not carry its tunnels.
func observeMgmt(d *store.Desired, answers map[string]*hostAnswer, labs map[string]bool) []store.MgmtObservation {
	hosts := map[string]store.Host{}
	for _, h := range d.Hosts {
		hosts[h.Name] = h
	}
	var out []store.MgmtObservation
	for i := range d.Mgmt {
		s := &d.Mgmt[i]
		a := answers[s.Host]
		if a == nil || labs != nil && !labs[s.LabID] {
			continue
		}
		st, why := a.mgmtStatus(*s, d.Mgmt)
		for _, o := range d.Mgmt {
			if o.LabID != s.LabID || st != store.LinkUp || o.Hub == "" || o.Host != s.Host && o.Hub != s.Host {
				continue
			}
			if w := underlayBetween(o.Host, o.Hub, hosts); w != "" {
				st, why = store.LinkError, w
			}
		}
		if st == s.Status && why == s.Error {
			continue
		}
		s.Status, s.Error = st, why
		out = append(out, store.MgmtObservation{Lab: s.LabID, Host: s.Host, Status: st, Error: why, Answered: a.unknown == ""})
	}
	return out
}

// mgmtReasons says, of a lab's management network, what is not up.
func mgmtReasons(segs []store.MgmtSegment) (up int, reasons []string) {
	for _, s := range segs {
		switch {
		case s.Status == store.LinkUp:
			up++
		case s.Status == store.LinkPending || s.Status == "":
		default:
			reasons = append(reasons, fmt.Sprintf("management network on %s: %s", s.Host, cmp.Or(s.Error, s.Status)))
		}
	}
	return up, reasons
}
