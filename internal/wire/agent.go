package wire

import "time"

// Status values of a tunnel or port result.
const (
	StatusConverged = "converged"
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusError     = "error"
	StatusProtected = "protected"
)

// SkippedOVSReadError says the agent could not read its bridge and changed
// nothing.
const SkippedOVSReadError = "ovs_read_error"

// DeclaredTunnel is one cross-host link's tunnel as the controller wants it
// on this host.
type DeclaredTunnel struct {
	LinkID       string `json:"link_id"`
	LabID        string `json:"lab_id"`
	VNI          int    `json:"vni"`
	LocalIP      string `json:"local_ip"`
	RemoteIP     string `json:"remote_ip"`
	ExpectedVLAN int    `json:"expected_vlan"`
	PortName     string `json:"port_name"`
	MTU          int    `json:"mtu"`
	Placeholder  bool   `json:"placeholder"`
}

// Protected reports whether the tunnel is an in-progress placeholder the
// agent must leave alone: flagged, or without addresses or VNI.
func (t DeclaredTunnel) Protected() bool {
	return t.Placeholder || t.LocalIP == "" || t.RemoteIP == "" || t.VNI == 0
}

// DeclareStateRequest is the full desired tunnel set for this host, scoped
// to DeclaredLabs plus the labs of its tunnels.
type DeclareStateRequest struct {
	Tunnels      []DeclaredTunnel `json:"tunnels"`
	DeclaredLabs []string         `json:"declared_labs"`
	Generation   *int64           `json:"generation,omitempty"` // new: fencing
}

// TunnelResult is the outcome for one declared tunnel.
type TunnelResult struct {
	LinkID     string  `json:"link_id"`
	LabID      string  `json:"lab_id"`
	PortName   string  `json:"port_name"` // new
	Status     string  `json:"status"`
	ActualVLAN *int    `json:"actual_vlan"`
	Error      *string `json:"error"`
}

// DeclareStateResponse answers a declaration.
type DeclareStateResponse struct {
	Results            []TunnelResult `json:"results"`
	OrphansRemoved     []string       `json:"orphans_removed"`
	Skipped            *string        `json:"skipped"`             // new in the response
	ObservedGeneration *int64         `json:"observed_generation"` // new
	// CacheError (new) is as in HostDeclarationResponse.
	CacheError *string `json:"cache_error,omitempty"`
}

// PortState is one node interface and its bridge port.
type PortState struct {
	NodeName      string `json:"node_name"`
	InterfaceName string `json:"interface_name"`
	OVSPortName   string `json:"ovs_port_name"`
	VLANTag       int    `json:"vlan_tag"`
	Carrier       string `json:"carrier"` // "on", "off" or "unknown"
}

// PortStateResponse lists a lab's node ports on this host.
type PortStateResponse struct {
	Ports []PortState `json:"ports"`
}

// PortPairing is a same-host link: two node ports that must share a tag.
type PortPairing struct {
	LinkName string `json:"link_name"`
	LabID    string `json:"lab_id"`
	PortA    string `json:"port_a"`
	PortB    string `json:"port_b"`
	VLANTag  int    `json:"vlan_tag"`
}

// PortDeclareRequest declares same-host pairings.
type PortDeclareRequest struct {
	Pairings []PortPairing `json:"pairings"`
}

// PortResult is the outcome for one pairing.
type PortResult struct {
	LinkName   string  `json:"link_name"`
	LabID      string  `json:"lab_id"`
	Status     string  `json:"status"`
	ActualVLAN *int    `json:"actual_vlan"`
	Error      *string `json:"error"`
}

// PortDeclareResponse answers a port declaration.
type PortDeclareResponse struct {
	Results []PortResult `json:"results"`
}

// ReconcilePortsRequest is the old whitelist call.
type ReconcilePortsRequest struct {
	ValidPortNames []string `json:"valid_port_names"`
	Force          bool     `json:"force"`
	Confirm        bool     `json:"confirm"`
	AllowEmpty     bool     `json:"allow_empty"`
}

// ReconcilePortsResponse answers the whitelist call.
type ReconcilePortsResponse struct {
	RemovedPorts []string `json:"removed_ports"`
	ValidCount   int      `json:"valid_count"`
	Skipped      bool     `json:"skipped,omitempty"`
	Reason       string   `json:"reason,omitempty"`
}

// AttachLinkRequest attaches this host's side of a cross-host link.
type AttachLinkRequest struct {
	LabID         string `json:"lab_id"`
	ContainerName string `json:"container_name"` // the node
	InterfaceName string `json:"interface_name"`
	VNI           int    `json:"vni"`
	LocalIP       string `json:"local_ip"`
	RemoteIP      string `json:"remote_ip"`
	LinkID        string `json:"link_id"`
	TenantMTU     int    `json:"tenant_mtu"`
}

// AttachLinkResponse answers an attach.
type AttachLinkResponse struct {
	Success   bool    `json:"success"`
	Error     *string `json:"error"`
	LocalVLAN *int    `json:"local_vlan"`
	VNI       *int    `json:"vni"`
	PortName  string  `json:"port_name,omitempty"` // new
}

// DetachLinkRequest detaches this host's side of a cross-host link.
type DetachLinkRequest struct {
	LabID         string `json:"lab_id"`
	ContainerName string `json:"container_name"`
	InterfaceName string `json:"interface_name"`
	LinkID        string `json:"link_id"`
}

// DetachLinkResponse answers a detach.
type DetachLinkResponse struct {
	Success           bool    `json:"success"`
	Error             *string `json:"error"`
	InterfaceIsolated bool    `json:"interface_isolated"`
	NewVLAN           *int    `json:"new_vlan"`
	TunnelDeleted     bool    `json:"tunnel_deleted"`
}

// SameHostLinkRequest connects two node interfaces on this host.
type SameHostLinkRequest struct {
	SourceNode      string `json:"source_node"`
	SourceInterface string `json:"source_interface"`
	TargetNode      string `json:"target_node"`
	TargetInterface string `json:"target_interface"`
}

// SameHostLinkResponse answers a same-host link create or delete.
type SameHostLinkResponse struct {
	Success bool    `json:"success"`
	LinkID  string  `json:"link_id"`
	VLANTag *int    `json:"vlan_tag"`
	Error   *string `json:"error"`
}

// NodeInterface is one interface of a node to create.
type NodeInterface struct {
	Name string `json:"name"`
	MTU  int    `json:"mtu"`
}

// CreateNodeRequest creates a node on this host.
type CreateNodeRequest struct {
	Name       string          `json:"name"`
	Interfaces []NodeInterface `json:"interfaces"`
	Exec       []string        `json:"exec,omitempty"` // new: run inside the node once it is on the bridge
}

// NodePort is a node interface as created.
type NodePort struct {
	Interface string `json:"interface_name"`
	PortName  string `json:"ovs_port_name"`
	VLANTag   int    `json:"vlan_tag"`
}

// NodeResponse describes a node on this host.
type NodeResponse struct {
	LabID      string     `json:"lab_id"`
	Name       string     `json:"name"`
	Runtime    string     `json:"runtime"`
	RuntimeID  string     `json:"runtime_id"`
	Ports      []NodePort `json:"ports"`
	ExecErrors []string   `json:"exec_errors,omitempty"` // new: exec commands that failed
}

// CleanupRequest tears a lab down on this host.
type CleanupRequest struct {
	LabID string `json:"lab_id"`
}

// CleanupResponse answers a cleanup.
type CleanupResponse struct {
	TunnelsDeleted int      `json:"tunnels_deleted"`
	BridgesDeleted int      `json:"bridges_deleted"`
	NodesDeleted   int      `json:"nodes_deleted"` // new
	Errors         []string `json:"errors"`
}

// SetVLANRequest retags one port.
type SetVLANRequest struct {
	VLANTag int    `json:"vlan_tag"`
	LinkID  string `json:"link_id,omitempty"`
}

// SetVLANResponse answers a retag.
type SetVLANResponse struct {
	Success         bool    `json:"success"`
	PortName        string  `json:"port_name"`
	VLANTag         int     `json:"vlan_tag"`
	InMemoryUpdated bool    `json:"in_memory_updated"`
	Error           *string `json:"error,omitempty"`
}

// LinkTunnel is a tunnel the agent keeps, in the status report.
type LinkTunnel struct {
	LinkID        string `json:"link_id"`
	VNI           int    `json:"vni"`
	LocalIP       string `json:"local_ip"`
	RemoteIP      string `json:"remote_ip"`
	LocalVLAN     int    `json:"local_vlan"`
	InterfaceName string `json:"interface_name"`
	LabID         string `json:"lab_id"`
	TenantMTU     int    `json:"tenant_mtu"`
}

// OverlayStatus is the agent's report of what it keeps.
type OverlayStatus struct {
	VTEPs       []any        `json:"vteps"`
	Tunnels     []any        `json:"tunnels"`
	Bridges     []any        `json:"bridges"`
	LinkTunnels []LinkTunnel `json:"link_tunnels"`
	Generation  int64        `json:"generation"` // new: the last applied declaration
}

// RegisterRequest is an agent announcing itself to the controller.
type RegisterRequest struct {
	Name         string   `json:"name"`
	Address      string   `json:"address"`
	DataIP       string   `json:"data_ip"`
	Capabilities []string `json:"capabilities"`
	Version      string   `json:"version"`
	// ObservedGeneration (new) is the last declaration the agent applied: a
	// controller whose counter is behind it (a restored database) moves past
	// it.
	ObservedGeneration int64 `json:"observed_generation,omitempty"`
	// UnderlayMTU (new) is the MTU of the interface that holds DataIP.
	UnderlayMTU int `json:"underlay_mtu,omitempty"`
	// Credential (new) is the host credential the agent holds, from an
	// earlier registration ("" for none). An agent that offers the
	// CapHostCredential capability is bound to its name by it.
	Credential string `json:"credential,omitempty"`
}

// CapHostCredential is the capability of an agent that keeps a host
// credential: the controller binds the host's name to the first such agent
// that registers it, and refuses any other agent that registers the name
// or heartbeats for it.
const CapHostCredential = "host-credential"

// CredentialHeader carries a host's credential on its agent's heartbeats
// and on the controller's calls to that agent, beside the agent token.
const CredentialHeader = "Netloom-Host-Credential"

// ControllerHeader names the controller (its advertised URL) on its calls
// to an agent, so the agent's log says which controller a refused
// declaration came from when several share a database.
const ControllerHeader = "Netloom-Controller"

// RegisterResponse answers a registration; Credential is the host's, for
// an agent that offers CapHostCredential.
type RegisterResponse struct {
	Success    bool   `json:"success"`
	Credential string `json:"credential,omitempty"`
}

// HeartbeatRequest is an agent's heartbeat (new body: the original sends
// none). ObservedGeneration lets a controller on a restored database catch
// up without waiting for a registration. UnderlayMTU and Underlay report the
// underlay as the agent last saw it; an agent sends a heartbeat at once
// when either changes.
type HeartbeatRequest struct {
	ObservedGeneration int64           `json:"observed_generation,omitempty"`
	UnderlayMTU        int             `json:"underlay_mtu,omitempty"`
	Underlay           []UnderlayCheck `json:"underlay,omitempty"`
}

// Underlay check statuses.
const (
	UnderlayOK          = "ok"
	UnderlayUnreachable = "unreachable"  // the peer's data IP does not answer
	UnderlayPortBlocked = "port_blocked" // it answers, VXLAN on the configured port does not pass
	UnderlayMTUTooSmall = "mtu"          // VXLAN passes, but not at the size the links need, with DF
)

// UnderlayCheck is what an agent last found on the underlay path to one
// peer it shares cross-host links with: that VXLAN on the configured UDP
// port passes, with DF, at the largest outer packet the links need.
type UnderlayCheck struct {
	PeerIP string `json:"peer_ip"`
	Status string `json:"status"`
	// NeedMTU is the outer packet size the links need (their largest MTU
	// plus 50); PathMTU, for status mtu, the largest that passed.
	NeedMTU   int       `json:"need_mtu"`
	PathMTU   int       `json:"path_mtu,omitempty"`
	Reason    string    `json:"reason,omitempty"` // in words, with the numbers
	CheckedAt time.Time `json:"checked_at"`
}

// HostRemoved answers DELETE /api/v1/hosts/{name}: the labs whose nodes
// on it were unplaced (with force).
type HostRemoved struct {
	Host     string   `json:"host"`
	Unplaced []string `json:"unplaced_labs"`
}
