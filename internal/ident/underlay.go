package ident

import (
	"net"
	"net/netip"
)

// UnderlayVNI is the VNI of the underlay probe between agents: the 24-bit
// maximum, outside the span the controller allocates link VNIs from, so a
// probe never lands on a link.
const UnderlayVNI = 1<<24 - 1

// UnderlayDevice is the name of an agent's probe VXLAN device, inside its
// probe namespace.
const UnderlayDevice = "nlunderlay"

// UnderlayMAC returns the MAC address of the probe device of the agent
// whose data IP is ip: 02:6e and the address's four bytes. Each agent sets
// its own and computes its peers', so probes need neither ARP nor flooding.
func UnderlayMAC(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x6e, b[0], b[1], b[2], b[3]}
}

// UnderlayNamespaceName returns the probe namespace of an agent: named
// after the named namespace the agent runs in, when it runs in one (so that
// simulated hosts sharing /run/netns each have their own, and a test bed's
// hosts' go with the bed), else after the host.
func UnderlayNamespaceName(agentNetns, host string) string {
	if agentNetns != "" {
		return sanitize(agentNetns) + "-underlay"
	}
	return sanitize(host) + "-underlay"
}
