// Package underlay checks the underlay between an agent and the peers it
// shares cross-host links with: that each answers on the underlay, that
// VXLAN on the configured UDP port passes, and at what outer size with DF.
//
// The agent calls it (internal/agent); it measures and reports, and never
// decides what a result means for a link: that is the controller's.
//
// Invariants: the probe namespace and its VXLAN device are made
// idempotently and kept across restarts, and hold exactly the peers of the
// last check; the probe VNI (ident.UnderlayVNI) is one the controller never
// allocates; no subprocess is run.
//
// Design notes: a VXLAN probe must cross the real underlay in the real
// encapsulation, with the host's UDP socket and the host's firewall, yet
// must not touch a link's tunnel. So each agent keeps a probe namespace
// holding one VXLAN device created in the host's namespace (its UDP socket
// is the host's, on the data IP and port) and then moved: inside, the
// host's data IP as a /32, and per peer a /32 route, a permanent neighbour
// and an FDB entry, with MAC addresses computed from the data IPs
// (ident.UnderlayMAC), so no ARP or flooding crosses. An ICMP echo sent
// there travels as VXLAN to the peer's probe namespace, whose kernel
// answers the same way; the outer header carries DF (IFLA_VXLAN_DF, which
// vishvananda/netlink does not offer, hence a raw request), and the inner
// one too (IP_PMTUDISC_PROBE: DF, without the kernel's cached path MTU, which
// a probe must not trust). A plain echo from the host's namespace tells an
// unreachable peer from a blocked port. Sizes are searched in parallel,
// several per round, so a short path costs a few timeouts, not a dozen.
package underlay
