package controller

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// The pure half of a convergence round: from the desired state read from
// the store to allocations, host declarations, and from the agents' answers
// to the states users see. Nothing here does I/O.

type nodeKey struct{ lab, node string }

type ifaceKey struct{ lab, node, iface string }

type linkKey struct{ lab, link string }

// runs reports whether a lab in state is declared to its hosts: not stopped
// and not being torn down.
func runs(state string) bool {
	return state == store.LabStarting || state == store.LabRunning || state == store.LabError
}

// vniProbes bounds how far a VNI search goes past the first choice.
const vniProbes = 1000

// side is one end of a link: its node interface, where it is and its tag.
type side struct {
	host, node, iface string
	tag               *int
	mac               string
}

func sides(ls store.LinkState) [2]side {
	return [2]side{{ls.SourceHost, ls.SourceNode, ls.SourceIface, ls.SourceTag, ls.SourceMAC},
		{ls.TargetHost, ls.TargetNode, ls.TargetIface, ls.TargetTag, ls.TargetMAC}}
}

// defaultMTU is a link's MTU when its lab file names none, and the most a
// cross-host link gets by default.
const defaultMTU = 1500

// linkMTU is a link's MTU between its hosts: the one asked for, else 1500
// on one host and, across hosts, the most their underlays carry after
// VXLAN's overhead, at most 1500 (an underlay not reported counts as 1500).
// An asked MTU the underlay cannot carry is an error with the numbers,
// unless the link allows its outer packets to be fragmented.
func linkMTU(asked int, fragment bool, a, b string, underlay map[string]int) (int, error) {
	if a == b {
		return cmp.Or(asked, defaultMTU), nil
	}
	ua, ub := cmp.Or(underlay[a], defaultMTU), cmp.Or(underlay[b], defaultMTU)
	fits := min(ua, ub) - wire.VXLANOverhead
	switch {
	case asked == 0:
		return min(fits, defaultMTU), nil
	case asked > fits && !fragment:
		return fits, fmt.Errorf("mtu %d needs %d-byte packets on the underlay between %s (MTU %d) and %s (MTU %d): at most %d fits (or allow-fragmentation: true)",
			asked, asked+wire.VXLANOverhead, a, ua, b, ub, fits)
	}
	return asked, nil
}

// underlayProblem says what the agents of a cross-host link's hosts last
// found wrong on the underlay between them, or "".
func underlayProblem(ls store.LinkState, hosts map[string]store.Host) string {
	if !ls.CrossHost {
		return ""
	}
	return underlayBetween(ls.SourceHost, ls.TargetHost, hosts)
}

// underlayBetween says what the agents of two hosts last found wrong on
// the underlay between them, either way, or "".
func underlayBetween(a, b string, hosts map[string]store.Host) string {
	var whys []string
	for _, p := range [][2]string{{a, b}, {b, a}} {
		from, to := hosts[p[0]], hosts[p[1]]
		for _, c := range from.Underlay {
			if c.PeerIP == to.DataIP && c.Status != wire.UnderlayOK {
				whys = append(whys, fmt.Sprintf("underlay %s → %s: %s", from.Name, to.Name, underlayWhy(c)))
			}
		}
	}
	return strings.Join(whys, "; ")
}

// underlayWhy words an underlay check that failed.
func underlayWhy(c wire.UnderlayCheck) string {
	switch c.Status {
	case wire.UnderlayUnreachable:
		return "unreachable"
	case wire.UnderlayPortBlocked:
		return "VXLAN port blocked"
	case wire.UnderlayMTUTooSmall:
		return fmt.Sprintf("path MTU %d below the needed %d", c.PathMTU, c.NeedMTU)
	}
	return cmp.Or(c.Reason, c.Status)
}

// allocate gives every link of a running lab the hosts of its nodes'
// placements, a tag per side from the host's linked range (one tag for both
// ends of a same-host link) and, once cross-host, a VNI, and derives the
// tunnel rows from the hosts' current data addresses. A side whose node
// stayed on its host keeps its tag; a side that moved gets a fresh one on
// its new host. Tags are unique per host across all labs. It updates d in
// place and returns what must be stored, plus the links it could not
// allocate.
func allocate(d *store.Desired) (allocs []store.Allocation, tunnels []store.TunnelRow, drop []string, problems []error) {
	placed := map[nodeKey]string{}
	for _, n := range d.Nodes {
		if n.PlacedOn != "" {
			placed[nodeKey{n.Lab, n.Name}] = n.PlacedOn
		}
	}
	running := map[string]bool{}
	for _, l := range d.Labs {
		running[l.ID] = runs(l.State)
	}
	ips := map[string]string{}
	underlay := map[string]int{}
	for _, h := range d.Hosts {
		ips[h.Name] = h.DataIP
		underlay[h.Name] = h.UnderlayMTU
	}
	used := map[string]map[int]int{} // host → tag → sides holding it
	hold := func(host string, tag, n int) {
		if used[host] == nil {
			used[host] = map[int]int{}
		}
		used[host][tag] += n
	}
	bridges := bridgeNodes(d.Nodes)
	// A bridge holds its one tag once, however many of its link sides
	// carry it: bheld gathers, per bridge, the host/tag pairs its sides
	// carry (one, but for a bridge that moved or a hand-edited database).
	type hostTag struct {
		host string
		tag  int
	}
	bheld := map[nodeKey]map[hostTag]bool{}
	vnis := map[int]bool{}
	for _, ls := range d.Links {
		for _, s := range sides(ls) {
			if s.host == "" || s.tag == nil {
				continue
			}
			if k := (nodeKey{ls.LabID, s.node}); bridges[k] {
				if bheld[k] == nil {
					bheld[k] = map[hostTag]bool{}
				}
				bheld[k][hostTag{s.host, *s.tag}] = true
				continue
			}
			hold(s.host, *s.tag, 1)
		}
		if ls.VNI != nil {
			vnis[*ls.VNI] = true
		}
	}
	for _, m := range d.Mgmt { // allocateMgmt lets go of those of hosts a lab left
		hold(m.Host, m.Tag, 1)
		if m.VNI != nil {
			vnis[*m.VNI] = true
		}
	}
	// A running bridge keeps the lowest tag it has on the host it is
	// placed on and lets go of the others (those of a host it left), so
	// that all its sides get one tag.
	btag := map[nodeKey]int{}
	for _, k := range slices.SortedFunc(maps.Keys(bheld), func(a, b nodeKey) int {
		return cmp.Or(cmp.Compare(a.lab, b.lab), cmp.Compare(a.node, b.node))
	}) {
		on, keep := placed[k], -1
		if running[k.lab] && on != "" {
			for ht := range bheld[k] {
				if ht.host == on && (keep < 0 || ht.tag < keep) {
					keep = ht.tag
				}
			}
		}
		for ht := range bheld[k] {
			hold(ht.host, ht.tag, 1)
			if running[k.lab] && on != "" && ht.tag != keep {
				hold(ht.host, ht.tag, -1)
			}
		}
		if keep >= 0 {
			btag[k] = keep
		}
	}
	fresh := func(host string) (int, error) { return freeTag(used[host], host) }
	// bridgeTag is a bridge's tag on its host, fresh the first time a link
	// asks for one that has none there.
	bridgeTag := func(k nodeKey) (int, error) {
		if t, ok := btag[k]; ok {
			return t, nil
		}
		t, err := fresh(placed[k])
		if err != nil {
			return 0, fmt.Errorf("bridge %s: %w", k.node, err)
		}
		hold(placed[k], t, 1)
		btag[k] = t
		return t, nil
	}

	// First what each link keeps, releasing the tags of sides that moved, so
	// that the second pass sees every tag that is free.
	type todo struct {
		i            int
		sh, th       string
		keepS, keepT bool
		sb, tb       bool // the side is a bridge's
	}
	var work []todo
	for i := range d.Links {
		ls := &d.Links[i]
		if !running[ls.LabID] {
			continue
		}
		sh, th := placed[nodeKey{ls.LabID, ls.SourceNode}], placed[nodeKey{ls.LabID, ls.TargetNode}]
		switch { // a host endpoint is on the host of the link's node
		case ls.SourceNode == wire.HostNode:
			sh = th
		case ls.TargetNode == wire.HostNode:
			th = sh
		}
		if sh == "" || th == "" {
			continue
		}
		sb, tb := bridges[nodeKey{ls.LabID, ls.SourceNode}], bridges[nodeKey{ls.LabID, ls.TargetNode}]
		if sb && tb {
			problems = append(problems, fmt.Errorf("link %s of %s: a link between two bridges", ls.Name, ls.LabID))
			continue
		}
		keepS := ls.SourceHost == sh && ls.SourceTag != nil
		keepT := ls.TargetHost == th && ls.TargetTag != nil
		if sb || tb {
			keepS, keepT = keepBridgeSides(*ls, sb, sh, th, btag)
		}
		if sh == th && keepS && keepT && *ls.SourceTag != *ls.TargetTag {
			keepT = false // one tag for both ends of a same-host link
		}
		if keepS && keepT && ls.CrossHost == (sh != th) && (sh == th || ls.VNI != nil) && ls.MTU != nil {
			continue
		}
		// A bridge's side holds no tag of its own: the bridge does.
		if !keepS && !sb && ls.SourceHost != "" && ls.SourceTag != nil {
			hold(ls.SourceHost, *ls.SourceTag, -1)
		}
		if !keepT && !tb && ls.TargetHost != "" && ls.TargetTag != nil {
			hold(ls.TargetHost, *ls.TargetTag, -1)
		}
		work = append(work, todo{i, sh, th, keepS, keepT, sb, tb})
	}
	for _, w := range work {
		ls := &d.Links[w.i]
		var vni *int
		if w.sh != w.th && ls.VNI == nil {
			for i := range vniProbes {
				if v := int(ident.VNIProbe(ls.LabID, ls.Name, i)); !vnis[v] {
					vnis[v], vni = true, &v
					break
				}
			}
			if vni == nil {
				problems = append(problems, fmt.Errorf("link %s of %s: %d VNIs from the first choice are taken", ls.Name, ls.LabID, vniProbes))
				continue
			}
		}
		var st, tt int
		var err error
		switch {
		case w.sb:
			st, err = bridgeTag(nodeKey{ls.LabID, ls.SourceNode})
		case w.keepS:
			st = *ls.SourceTag
		case w.sh == w.th && w.tb:
			st, err = bridgeTag(nodeKey{ls.LabID, ls.TargetNode})
		case w.sh == w.th && w.keepT:
			st = *ls.TargetTag
		default:
			st, err = fresh(w.sh)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("link %s of %s: %w", ls.Name, ls.LabID, err))
			continue
		}
		if !w.keepS && !w.sb {
			hold(w.sh, st, 1)
		}
		switch {
		case w.sh == w.th:
			tt = st
		case w.tb:
			tt, err = bridgeTag(nodeKey{ls.LabID, ls.TargetNode})
		case w.keepT:
			tt = *ls.TargetTag
		default:
			tt, err = fresh(w.th)
		}
		if err != nil {
			if !w.keepS && !w.sb {
				hold(w.sh, st, -1)
			}
			problems = append(problems, fmt.Errorf("link %s of %s: %w", ls.Name, ls.LabID, err))
			continue
		}
		if !w.keepT && !w.tb {
			hold(w.th, tt, 1)
		}
		mtu, _ := linkMTU(ls.RequestedMTU, ls.AllowFragmentation, w.sh, w.th, underlay)
		a := store.Allocation{LinkStateID: ls.ID, SourceHost: w.sh, TargetHost: w.th, SourceTag: st, TargetTag: tt, VNI: vni, MTU: mtu}
		if vni != nil {
			ls.VNI = vni
		}
		allocs = append(allocs, a)
		ls.SourceHost, ls.TargetHost, ls.SourceTag, ls.TargetTag, ls.MTU = w.sh, w.th, &a.SourceTag, &a.TargetTag, &a.MTU
		ls.CrossHost, ls.VLANTag = w.sh != w.th, nil
		if !ls.CrossHost {
			ls.VLANTag = &a.SourceTag
		}
		ls.ActualState, ls.Error, ls.PartialHosts = store.LinkPending, "", nil
		ls.SourceStatus, ls.SourceError, ls.SourceVerifiedAt = "", "", nil
		ls.TargetStatus, ls.TargetError, ls.TargetVerifiedAt = "", "", nil
		ls.SourceAttached, ls.TargetAttached = false, false
	}

	for i := range d.Links {
		ls := &d.Links[i]
		if !running[ls.LabID] {
			continue
		}
		if !ls.CrossHost || ls.VNI == nil || ls.SourceTag == nil || ls.TargetTag == nil {
			if ls.Tunnel != nil {
				drop = append(drop, ls.ID)
				ls.Tunnel = nil
			}
			continue
		}
		want := store.Tunnel{VNI: *ls.VNI, AgentA: ls.SourceHost, IPA: ips[ls.SourceHost], AgentB: ls.TargetHost,
			IPB: ips[ls.TargetHost], Status: "active", PortName: ident.PortName(ls.LabID, ls.Name)}
		if ls.Tunnel != nil {
			want.ID = ls.Tunnel.ID
			if *ls.Tunnel == want {
				continue
			}
		}
		tunnels = append(tunnels, store.TunnelRow{LinkStateID: ls.ID, LabID: ls.LabID, VNI: want.VNI, AgentA: want.AgentA,
			IPA: want.IPA, AgentB: want.AgentB, IPB: want.IPB, PortName: want.PortName})
		ls.Tunnel = &want
	}
	return allocs, tunnels, drop, problems
}

// bridgeNodes are the nodes that are bridges (topology.IsBridge): shared
// segments with one tag on their host and no runtime node.
func bridgeNodes(nodes []store.LabNode) map[nodeKey]bool {
	out := map[nodeKey]bool{}
	for _, n := range nodes {
		if topology.IsBridge(n.Kind) {
			out[nodeKey{n.Lab, n.Name}] = true
		}
	}
	return out
}

// keepBridgeSides says which sides of a link to a bridge keep their tags,
// the bridge being its source when sb, placed on sh and th. The bridge's
// side keeps its tag when it is the bridge's current one on its host
// (btag: none when the bridge moved or is new). A member on the bridge's
// host keeps its tag only when it is that one too; a member on another
// host keeps its own only when the link already crossed hosts, since a
// member that shared the bridge's tag shares it with the other members.
func keepBridgeSides(ls store.LinkState, sb bool, sh, th string, btag map[nodeKey]int) (keepS, keepT bool) {
	ss := sides(ls)
	b, m, bh, mh := 0, 1, sh, th
	if !sb {
		b, m, bh, mh = 1, 0, th, sh
	}
	t, ok := btag[nodeKey{ls.LabID, ss[b].node}]
	keep := [2]bool{}
	keep[b] = ok && ss[b].host == bh && ss[b].tag != nil && *ss[b].tag == t
	keep[m] = ss[m].host == mh && ss[m].tag != nil
	if mh == bh {
		keep[m] = keep[m] && ok && *ss[m].tag == t
	} else {
		keep[m] = keep[m] && ls.CrossHost
	}
	return keep[0], keep[1]
}

// hostDeclarations builds every host's full declaration from the desired
// state: the nodes placed on it of labs that run (but those in omit), each
// with an interface per link end and that side's tag, and a tunnel per
// cross-host link end, from this host's current data address to the peer's.
// Every lab in the database is in every declaration's scope, so what a
// destroyed or edited lab left on a host goes.
func hostDeclarations(d store.Desired, omit map[nodeKey]bool) map[string]*wire.HostDeclaration {
	return declarationsOf(d, omit, nil)
}

// declarationsOf builds the declarations of the hosts in only (every
// host when nil), as hostDeclarations does.
func declarationsOf(d store.Desired, omit map[nodeKey]bool, only map[string]bool) map[string]*wire.HostDeclaration {
	labs := []string{}
	running := map[string]bool{}
	for _, l := range d.Labs {
		labs = append(labs, l.ID)
		running[l.ID] = runs(l.State)
	}
	slices.Sort(labs)
	decls := map[string]*wire.HostDeclaration{}
	ips := map[string]string{}
	for _, h := range d.Hosts {
		ips[h.Name] = h.DataIP
		if only == nil || only[h.Name] {
			decls[h.Name] = &wire.HostDeclaration{Nodes: []wire.DeclaredNode{}, Tunnels: []wire.DeclaredTunnel{}, DeclaredLabs: labs}
		}
	}
	declared := map[nodeKey]at{}
	hostNodes := map[labHost]int{}
	// hostNode is the lab's host pseudo-node in host's declaration, made
	// the first time it is asked for.
	hostNode := func(host, lab string) *wire.DeclaredNode {
		i, ok := hostNodes[labHost{lab, host}]
		if !ok {
			decls[host].Nodes = append(decls[host].Nodes, wire.DeclaredNode{LabID: lab, Name: wire.HostNode, Interfaces: []wire.DeclaredInterface{}})
			i = len(decls[host].Nodes) - 1
			hostNodes[labHost{lab, host}] = i
		}
		return &decls[host].Nodes[i]
	}
	bridges := bridgeNodes(d.Nodes)
	bridgeOn := map[nodeKey]string{} // a running bridge's host: its tunnel ends, no node
	for _, n := range d.Nodes {
		k := nodeKey{n.Lab, n.Name}
		decl := decls[n.PlacedOn]
		if !running[n.Lab] || decl == nil || omit[k] {
			continue
		}
		if bridges[k] {
			bridgeOn[k] = n.PlacedOn
			continue
		}
		dn := wire.DeclaredNode{LabID: n.Lab, Name: n.Name, Kind: n.Kind, Image: n.Image, Exec: n.Exec, Interfaces: []wire.DeclaredInterface{}}
		if n.Image != "" {
			// Checked when the lab was applied: resolving cannot fail
			// unless the database was edited by hand, and then the node
			// runs on its image alone.
			dn.Container, dn.Files, _ = topology.Node{Name: n.Name, Kind: n.Kind, Image: n.Image, NodeSettings: n.NodeSettings}.Resolve(d.Files[n.Lab])
		}
		decl.Nodes = append(decl.Nodes, dn)
		declared[k] = at{n.PlacedOn, len(decl.Nodes) - 1}
	}
	for _, ls := range d.Links {
		if !running[ls.LabID] {
			continue
		}
		ss := sides(ls)
		for i, s := range ss {
			if s.tag == nil {
				continue
			}
			mtu := 0 // a link allocated before links had MTUs: the agent's defaults
			if ls.MTU != nil {
				mtu = *ls.MTU
			}
			host := bridgeOn[nodeKey{ls.LabID, s.node}]
			if s.node == wire.HostNode && decls[s.host] != nil {
				n := hostNode(s.host, ls.LabID)
				n.Interfaces = append(n.Interfaces, wire.DeclaredInterface{Name: s.iface, VLANTag: *s.tag, MTU: mtu, MAC: s.mac})
			}
			if p, ok := declared[nodeKey{ls.LabID, s.node}]; ok {
				host = p.host
				if p.host == s.host {
					n := &decls[p.host].Nodes[p.i]
					n.Interfaces = append(n.Interfaces, wire.DeclaredInterface{Name: s.iface, VLANTag: *s.tag, MTU: mtu, MAC: s.mac})
				}
			}
			// A bridge's side has no interface: its tag is the segment's,
			// and a member on another host reaches it by this tunnel end.
			if host == "" || host != s.host || !ls.CrossHost || ls.VNI == nil || ss[1-i].tag == nil {
				continue
			}
			peer := ss[1-i].host
			decls[host].Tunnels = append(decls[host].Tunnels, wire.DeclaredTunnel{LinkID: ls.Name, LabID: ls.LabID, VNI: *ls.VNI,
				LocalIP: ips[host], RemoteIP: ips[peer], ExpectedVLAN: *s.tag, PortName: ident.PortName(ls.LabID, ls.Name), MTU: mtu})
		}
	}
	declareMgmt(d, decls, declared, hostNode)
	return decls
}

// at is a node's place in the host declarations: its host and its index in
// that host's nodes.
type at struct {
	host string
	i    int
}

// hostAnswer is what one host answered to its declaration, by object.
type hostAnswer struct {
	host string
	// unknown is why nothing of the host is known (offline, unreachable,
	// refused, or it could not read its bridge); "" when it answered.
	unknown string
	nodes   map[nodeKey]wire.NodeStatus
	ifaces  map[ifaceKey]wire.InterfaceStatus
	tunnels map[linkKey]wire.TunnelResult
	// unremoved says, by lab, why something the host should no longer
	// hold is still there: its teardown is not confirmed.
	unremoved map[string]string
}

func newHostAnswer(host string) *hostAnswer {
	return &hostAnswer{host: host, nodes: map[nodeKey]wire.NodeStatus{}, ifaces: map[ifaceKey]wire.InterfaceStatus{},
		tunnels: map[linkKey]wire.TunnelResult{}, unremoved: map[string]string{}}
}

func text(p *string) string {
	if p == nil {
		return "no reason given"
	}
	return *p
}

// sideStatus is a link side's state on its host: up when its node, its
// interface and, for a cross-host link, its tunnel end converged.
func (a *hostAnswer) sideStatus(ls store.LinkState, s side, bridge bool) (status, why string) {
	if a.unknown != "" {
		return store.LinkUnknown, a.unknown
	}
	if bridge {
		// No node and no interface: the segment is the tag, up on its
		// host at once for a member on the same host, else once the
		// tunnel end to the member converged.
		return a.tunnelStatus(ls)
	}
	if n, ok := a.nodes[nodeKey{ls.LabID, s.node}]; ok && n.Status == wire.StatusError {
		return store.LinkError, fmt.Sprintf("%s: node %s: %s", a.host, s.node, text(n.Error))
	}
	ifc, ok := a.ifaces[ifaceKey{ls.LabID, s.node, s.iface}]
	switch {
	case !ok:
		return store.LinkUnknown, fmt.Sprintf("%s: no answer for %s:%s", a.host, s.node, s.iface)
	case ifc.Status == wire.StatusError:
		return store.LinkError, fmt.Sprintf("%s: %s:%s: %s", a.host, s.node, s.iface, text(ifc.Error))
	}
	return a.tunnelStatus(ls)
}

// tunnelStatus is the state of a link's tunnel end on the host: up for a
// same-host link, which has none.
func (a *hostAnswer) tunnelStatus(ls store.LinkState) (status, why string) {
	if !ls.CrossHost {
		return store.LinkUp, ""
	}
	return a.tunnelEnd(ls.LabID, ls.Name)
}

// tunnelEnd is the state of the end on the host of the tunnel of a lab's
// link.
func (a *hostAnswer) tunnelEnd(lab, link string) (status, why string) {
	t, ok := a.tunnels[linkKey{lab, link}]
	switch {
	case !ok:
		return store.LinkUnknown, fmt.Sprintf("%s: no answer for tunnel %s", a.host, ident.PortName(lab, link))
	case t.Status == wire.StatusError:
		return store.LinkError, fmt.Sprintf("%s: tunnel %s: %s", a.host, ident.PortName(lab, link), text(t.Error))
	case t.Status == wire.StatusProtected:
		return store.LinkUnknown, fmt.Sprintf("%s: tunnel %s left alone", a.host, ident.PortName(lab, link))
	}
	return store.LinkUp, ""
}

// bridgeStatus is a bridge's state on its host: up once the host
// answered and the tunnel ends of all its links to other hosts converged
// (links, those of the bridge's lab), the first failure else.
func (a *hostAnswer) bridgeStatus(n store.LabNode, links []store.LinkState) (status, why string) {
	if a.unknown != "" {
		return store.LinkUnknown, a.unknown
	}
	status = store.LinkUp
	for _, ls := range links {
		if ls.LabID != n.Lab || ls.SourceNode != n.Name && ls.TargetNode != n.Name {
			continue
		}
		if ls.SourceTag == nil || ls.TargetTag == nil {
			return store.LinkPending, ""
		}
		switch st, w := a.tunnelStatus(ls); {
		case st == store.LinkError:
			return st, w
		case st != store.LinkUp && status == store.LinkUp:
			status, why = st, w
		}
	}
	return status, why
}

// nodeStatus is a node's state on its host.
func (a *hostAnswer) nodeStatus(n store.LabNode) (status, why, runtimeID string) {
	if a.unknown != "" {
		return store.LinkUnknown, a.unknown, ""
	}
	st, ok := a.nodes[nodeKey{n.Lab, n.Name}]
	switch {
	case !ok:
		return store.LinkUnknown, fmt.Sprintf("%s: no answer for node %s", a.host, n.Name), ""
	case st.Status == wire.StatusError:
		return store.LinkError, fmt.Sprintf("%s: %s", a.host, text(st.Error)), st.RuntimeID
	}
	return store.LinkUp, "", st.RuntimeID
}

// made reports whether the host made the node in this round, and the exec
// commands that failed then: they replace those the node had.
func (a *hostAnswer) made(n store.LabNode) (bool, []wire.ExecFailure) {
	st, ok := a.nodes[nodeKey{n.Lab, n.Name}]
	if a.unknown != "" || !ok || st.Status != wire.StatusCreated {
		return false, nil
	}
	return true, st.ExecFailures
}

// linkState derives a link's state from its two sides: up when both are,
// error when one failed (PARTIAL_STATE, naming the host that holds state,
// when the other side of a cross-host link is up), unknown when a side's
// host could not tell, pending while a side is not yet answered.
func linkState(ls store.LinkState) (state, why string, partial []string) {
	s, t := ls.SourceStatus, ls.TargetStatus
	var whys []string
	for _, w := range []string{ls.SourceError, ls.TargetError} {
		if w != "" && !slices.Contains(whys, w) {
			whys = append(whys, w)
		}
	}
	why = strings.Join(whys, "; ")
	switch {
	case s == store.LinkUp && t == store.LinkUp:
		return store.LinkUp, "", nil
	case s == store.LinkError || t == store.LinkError:
		if ls.CrossHost && s == store.LinkUp {
			return store.LinkError, store.PartialStatePrefix + why, []string{ls.SourceHost}
		}
		if ls.CrossHost && t == store.LinkUp {
			return store.LinkError, store.PartialStatePrefix + why, []string{ls.TargetHost}
		}
		return store.LinkError, why, nil
	case s == store.LinkUnknown || t == store.LinkUnknown:
		return store.LinkUnknown, why, nil
	}
	return store.LinkPending, why, nil
}

// observe turns the answers of a round into what the store records, and
// updates d to match: the hosts that answered, and the nodes, links and
// mappings whose state changed (what did not change was verified by its
// host's answer). Objects on hosts without an answer keep what they had;
// nodes left out of the round (omit: made again) and their link sides are
// pending. Only the labs in labs are observed (every lab when nil): a
// round may know the others would not change.
func observe(d *store.Desired, answers map[string]*hostAnswer, omit map[nodeKey]bool, labs map[string]bool) store.Observations {
	o := store.Observations{Answered: answered(answers)}
	running := map[string]bool{}
	for _, l := range d.Labs {
		running[l.ID] = runs(l.State) && (labs == nil || labs[l.ID])
	}
	hosts := map[string]store.Host{}
	for _, h := range d.Hosts {
		hosts[h.Name] = h
	}
	bridges := bridgeNodes(d.Nodes)
	for i := range d.Nodes {
		n := &d.Nodes[i]
		a := answers[n.PlacedOn]
		if !running[n.Lab] || a == nil {
			continue
		}
		status, why, rid := a.nodeStatus(*n)
		if ifc, ok := a.ifaces[ifaceKey{n.Lab, n.Name, topology.MgmtIface}]; ok && n.MgmtAddress != "" && status == store.LinkUp && ifc.Status == wire.StatusError {
			status, why = store.LinkError, fmt.Sprintf("%s: management interface %s: %s", a.host, topology.MgmtIface, text(ifc.Error))
		}
		if bridges[nodeKey{n.Lab, n.Name}] {
			status, why = a.bridgeStatus(*n, d.Links)
			rid = ""
		}
		made, failures := a.made(*n)
		if omit[nodeKey{n.Lab, n.Name}] {
			status, why, rid, made = store.LinkPending, "", "", false
		}
		newFailures := made && !slices.Equal(failures, n.ExecFailures)
		if status == n.Status && why == n.Error && (rid == "" || rid == n.RuntimeID) && !newFailures {
			continue
		}
		n.Status, n.Error = status, why
		if rid != "" {
			n.RuntimeID = rid
		}
		if made {
			n.ExecFailures = failures
		}
		o.Nodes = append(o.Nodes, store.NodeObservation{Lab: n.Lab, Node: n.Name, Status: status, Error: why, RuntimeID: rid,
			Answered: a.unknown == "", Made: made, ExecFailures: failures})
	}
	for i := range d.Links {
		ls := &d.Links[i]
		if !running[ls.LabID] {
			continue
		}
		ss := sides(*ls)
		sa, ta := answers[ss[0].host], answers[ss[1].host]
		if ss[0].tag == nil || ss[1].tag == nil || sa == nil && ta == nil {
			continue
		}
		was := *ls
		if sa != nil {
			ls.SourceStatus, ls.SourceError = sa.sideStatus(*ls, ss[0], bridges[nodeKey{ls.LabID, ss[0].node}])
			if omit[nodeKey{ls.LabID, ss[0].node}] {
				ls.SourceStatus, ls.SourceError = store.LinkPending, ""
			}
			ls.SourceAttached = ls.CrossHost && ls.SourceStatus == store.LinkUp
		}
		if ta != nil {
			ls.TargetStatus, ls.TargetError = ta.sideStatus(*ls, ss[1], bridges[nodeKey{ls.LabID, ss[1].node}])
			if omit[nodeKey{ls.LabID, ss[1].node}] {
				ls.TargetStatus, ls.TargetError = store.LinkPending, ""
			}
			ls.TargetAttached = ls.CrossHost && ls.TargetStatus == store.LinkUp
		}
		ls.ActualState, ls.Error, ls.PartialHosts = linkState(*ls)
		if why := underlayProblem(*ls, hosts); why != "" && ls.ActualState == store.LinkUp {
			// Both ends converged, but the underlay does not carry it.
			ls.ActualState, ls.Error = store.LinkError, why
		}
		if ls.ActualState == was.ActualState && ls.Error == was.Error && slices.Equal(ls.PartialHosts, was.PartialHosts) &&
			ls.SourceStatus == was.SourceStatus && ls.SourceError == was.SourceError && ls.SourceAttached == was.SourceAttached &&
			ls.TargetStatus == was.TargetStatus && ls.TargetError == was.TargetError && ls.TargetAttached == was.TargetAttached {
			continue
		}
		o.Links = append(o.Links, store.LinkObservation{LinkStateID: ls.ID, Actual: ls.ActualState, Error: ls.Error,
			PartialHosts: strings.Join(ls.PartialHosts, ","),
			SourceStatus: ls.SourceStatus, SourceError: ls.SourceError, SourceAttached: ls.SourceAttached, SourceObserved: sa != nil && sa.unknown == "",
			TargetStatus: ls.TargetStatus, TargetError: ls.TargetError, TargetAttached: ls.TargetAttached, TargetObserved: ta != nil && ta.unknown == ""})
	}
	held := map[ifaceKey]store.MappingObservation{} // of the labs observed
	for _, m := range d.Mappings {
		if running[m.Lab] {
			held[ifaceKey{m.Lab, m.Node, m.Iface}] = m
		}
	}
	for _, host := range o.Answered {
		for k, ifc := range answers[host].ifaces {
			if !running[k.lab] || k.node == wire.HostNode || ifc.Status == wire.StatusError || ifc.ActualVLAN == nil {
				continue
			}
			m := store.MappingObservation{Lab: k.lab, Node: k.node, Iface: k.iface, OVSPort: ifc.PortName, Tag: *ifc.ActualVLAN}
			if old, ok := held[k]; !ok || old != m {
				o.Mappings = append(o.Mappings, m)
				held[k] = m
			}
		}
	}
	slices.SortFunc(o.Mappings, func(a, b store.MappingObservation) int {
		return cmp.Or(cmp.Compare(a.Lab, b.Lab), cmp.Compare(a.Node, b.Node), cmp.Compare(a.Iface, b.Iface))
	})
	if len(o.Mappings) > 0 {
		mappings := make([]store.MappingObservation, 0, len(d.Mappings)+len(o.Mappings))
		for _, m := range d.Mappings {
			if !running[m.Lab] {
				mappings = append(mappings, m)
			}
		}
		d.Mappings = slices.AppendSeq(mappings, maps.Values(held))
	}
	o.Mgmt = observeMgmt(d, answers, labs)
	return o
}

// answered lists, sorted, the hosts that answered.
func answered(answers map[string]*hostAnswer) []string {
	var hosts []string
	for _, host := range slices.Sorted(maps.Keys(answers)) {
		if answers[host].unknown == "" {
			hosts = append(hosts, host)
		}
	}
	return hosts
}

// maxReasons bounds the reasons a lab's summary quotes.
const maxReasons = 3

// labState derives a running lab's state from its nodes, links and
// management network: running when all are up, starting while some are not
// yet answered and none failed, error otherwise, with a summary of what is
// not up and why.
func labState(nodes []store.LabNode, links []store.LinkState, mgmt []store.MgmtSegment) (state, why string) {
	nodesUp, linksUp := 0, 0
	var reasons []string // of what is neither up nor pending
	reason := func(what, name, status, why string) {
		switch {
		case status == store.LinkPending || status == "":
		case why == "":
			reasons = append(reasons, fmt.Sprintf("%s %s %s", what, name, status))
		default:
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", what, name, why))
		}
	}
	for _, n := range nodes {
		if n.Status == store.LinkUp {
			nodesUp++
			continue
		}
		reason("node", n.Name, n.Status, n.Error)
	}
	for _, ls := range links {
		if ls.ActualState == store.LinkUp {
			linksUp++
			continue
		}
		reason("link", ls.Name, ls.ActualState, ls.Error)
	}
	mgmtUp, mgmtWhy := mgmtReasons(mgmt)
	reasons = append(reasons, mgmtWhy...)
	switch {
	case nodesUp == len(nodes) && linksUp == len(links) && mgmtUp == len(mgmt):
		return store.LabRunning, ""
	case len(reasons) == 0:
		return store.LabStarting, ""
	}
	why = fmt.Sprintf("%d of %d nodes and %d of %d links are not up: ", len(nodes)-nodesUp, len(nodes), len(links)-linksUp, len(links))
	if len(reasons) > maxReasons {
		reasons = append(reasons[:maxReasons], fmt.Sprintf("and %d more", len(reasons)-maxReasons))
	}
	return store.LabError, why + strings.Join(reasons, "; ")
}
