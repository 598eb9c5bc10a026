package ident

import (
	"crypto/md5"
	"encoding/hex"
	"net"
	"strconv"
)

// VNI bounds of the first-choice formula: a hash is folded into
// [VNIBase, VNIBase+vniSpan), which stays clear of the small VNIs people pick by
// hand and of the 24-bit maximum.
const (
	VNIBase = 1000
	vniSpan = 16_000_000
)

// Access tags of a host bridge (DESIGN §4): node ports that belong to no link
// ("isolated") take tags from IsolatedTagMin to IsolatedTagMax, the ports of a
// link from LinkedTagMin to LinkedTagMax. The controller allocates linked tags
// per host; the agent's allocator serves the original's per-link endpoints.
const (
	IsolatedTagMin = 100
	IsolatedTagMax = 2049
	LinkedTagMin   = 2050
	LinkedTagMax   = 4000
)

// VXLANPortPrefix starts the name of every per-link VXLAN port netloom makes.
const VXLANPortPrefix = "vxlan-"

// LinkName returns the canonical name of a link between two endpoints written
// "node:iface": the lexically smaller endpoint first, joined by "-". The order
// of the arguments does not matter.
func LinkName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "-" + b
}

// linkHash is the first 8 hex digits of md5("<lab>:<link>"); the port name and
// the VNI both come from it, so a port-name collision implies a VNI collision.
func linkHash(lab, link string) string {
	sum := md5.Sum([]byte(lab + ":" + link))
	return hex.EncodeToString(sum[:4])
}

// PortName returns the name of the VXLAN port and kernel device that carry
// link on a host, "vxlan-" followed by 8 hex digits (14 characters, within the
// 15-character interface name limit).
func PortName(lab, link string) string {
	return VXLANPortPrefix + linkHash(lab, link)
}

// VNI returns the first-choice VNI of a link. The controller records it under
// a uniqueness constraint and takes the next free value on a collision, so
// this is where the search starts, not necessarily the VNI in use.
func VNI(lab, link string) uint32 {
	h, _ := strconv.ParseUint(linkHash(lab, link), 16, 32) // always 8 hex digits
	return uint32(h%vniSpan + VNIBase)
}

// VNIProbe returns the i-th VNI to try for a link: the first choice for 0,
// then the next values, wrapping within the formula's span (W-26).
func VNIProbe(lab, link string, i int) uint32 {
	return uint32((int(VNI(lab, link))-VNIBase+i)%vniSpan + VNIBase)
}

// Ownership marks: the external_ids keys netloom writes on every OVS port it
// creates, so that a restarted agent tells its ports from anyone else's.
const (
	OwnerKey   = "netloom-owner" // always OwnerValue
	LabKey     = "netloom-lab"
	LinkKey    = "netloom-link"
	NodeKey    = "netloom-node"
	IfaceKey   = "netloom-iface"
	OwnerValue = "netloom"
)

// NamespacePrefix starts the name of every node namespace netloom makes.
const NamespacePrefix = "nl-"

// namePart bounds the lab and the node in a namespace name, so that the
// name stays short enough to read and to type; the hash tells apart the
// names this cuts short.
const namePart = 32

// NamespaceName returns the runtime name of a node, its network namespace's
// and its container's: "nl-<lab>-<node>-<h>", where h is 6 hex digits of
// md5("<lab>\x00<node>"), lab and node cut to 32 characters each and every
// character outside [A-Za-z0-9_.-] replaced by "_", so an engineer can `ip
// netns exec` into it. The hash keeps apart pairs whose readable parts read
// the same (lab "sec-a" node "x" and lab "sec" node "a-x"); a runtime still
// checks a namespace's or container's mark before it takes it as a node's.
func NamespaceName(lab, node string) string {
	sum := md5.Sum([]byte(lab + "\x00" + node))
	return NamespacePrefix + sanitize(cut(lab)) + "-" + sanitize(cut(node)) + "-" + hex.EncodeToString(sum[:3])
}

// cut keeps the first namePart bytes of s.
func cut(s string) string {
	if len(s) > namePart {
		return s[:namePart]
	}
	return s
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// HostPortPrefix starts the host-side name of every node interface veth.
const HostPortPrefix = "nlp"

// HostPortName returns the host-side name of a node interface's veth: "nlp"
// and 10 hex digits of md5("<lab>:<node>:<iface>"), 13 characters, within the
// 15-character limit whatever the lengths of the names.
func HostPortName(lab, node, iface string) string {
	sum := md5.Sum([]byte(lab + ":" + node + ":" + iface))
	return HostPortPrefix + hex.EncodeToString(sum[:5])
}

// NodeMAC returns the MAC address of a node interface: locally administered,
// unicast, and the same every time the node is made, so that a node made
// again after a reboot or a deletion is reached at once by neighbours that
// still hold its address in their ARP caches.
func NodeMAC(lab, node, iface string) net.HardwareAddr {
	sum := md5.Sum([]byte("mac:" + lab + ":" + node + ":" + iface))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

// MgmtIfacePrefix starts the name of a host's interface on a lab's
// management network.
const MgmtIfacePrefix = "nlm"

// MgmtIface returns the name of a host's interface on a lab's management
// network: "nlm" and 10 hex digits of md5("mgmt:<lab>"), 13 characters.
func MgmtIface(lab string) string {
	sum := md5.Sum([]byte("mgmt:" + lab))
	return MgmtIfacePrefix + hex.EncodeToString(sum[:5])
}

// MgmtLink returns the link id of the tunnel that joins a lab's management
// network on host to the lab's first host: "mgmt:<host>", which no link of
// a lab file ("<node>:<iface>-<node>:<iface>") can be.
func MgmtLink(host string) string { return "mgmt:" + host }
