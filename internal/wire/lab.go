package wire

import "time"

// The controller's view of labs, as its REST API shows them; the store keeps
// them in these shapes.

// Lab is a lab's row.
type Lab struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	State      string    `json:"state"`
	StateError string    `json:"state_error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// MgmtSubnet is the lab's management subnet ("": none, a lab stored
	// before netloom had management networks, until it is applied again).
	MgmtSubnet string `json:"mgmt_subnet,omitempty"`
}

// Node is a lab node with its placement.
type Node struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Image string   `json:"image,omitempty"`
	Exec  []string `json:"exec,omitempty"`
	NodeSettings
	// MgmtIPv4 is the management address the lab file asks for and
	// NetworkMode "none" leaves the node without one; MgmtAddress is the
	// address it has on the lab's management network ("" for none).
	MgmtIPv4    string `json:"mgmt_ipv4,omitempty"`
	NetworkMode string `json:"network_mode,omitempty"`
	MgmtAddress string `json:"mgmt_address,omitempty"`
	Host        string `json:"host,omitempty"`       // explicit, from the lab file
	PlacedOn    string `json:"placed_on,omitempty"`  // where it runs
	RuntimeID   string `json:"runtime_id,omitempty"` // e.g. its namespace
	// Status is what its host's agent last answered for it: up, error,
	// unknown (its host could not be asked) or pending (not yet answered).
	Status     string     `json:"status,omitempty"`
	Error      string     `json:"error,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"` // when its host last answered for it
	// ExecFailures are the exec commands that failed when the node was last
	// made, with their output.
	ExecFailures []ExecFailure `json:"exec_failures,omitempty"`
}

// LabView is a lab with its nodes and link states.
type LabView struct {
	Lab
	Progress LabProgress `json:"progress"`
	Nodes    []Node      `json:"nodes"`
	Links    []LinkState `json:"links"`
	Maps     []Mapping   `json:"interface_mappings,omitempty"`
	// Mgmt is the lab's management network on each of its hosts.
	Mgmt []MgmtSegment `json:"mgmt,omitempty"`
}

// MgmtSegment is a lab's management network on one host: the host's
// address on it, the tag its node's eth0 share there and, on every host
// but the first of the lab's (the hub), the VNI of its tunnel to the hub.
// Status is what the host's agent last answered for the host's address
// and tunnel, as a node's.
type MgmtSegment struct {
	LabID      string     `json:"lab_id"`
	Host       string     `json:"host"`
	Address    string     `json:"address"` // with the subnet's prefix length
	Tag        int        `json:"vlan_tag"`
	VNI        *int       `json:"vni,omitempty"`
	Hub        string     `json:"hub,omitempty"` // the host this one's tunnel goes to
	Status     string     `json:"status,omitempty"`
	Error      string     `json:"error,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
}

// Result is the lab as a deploy or destroy answers it: its state and each
// node's and link's.
func (v LabView) Result() DeployResponse {
	r := DeployResponse{Lab: v.Name, State: v.State, Error: v.StateError, Nodes: []NodeResult{}, Links: []LinkResult{}}
	for _, n := range v.Nodes {
		r.Nodes = append(r.Nodes, NodeResult{Name: n.Name, Host: n.PlacedOn, Status: n.Status, Error: n.Error, ExecFailures: n.ExecFailures})
	}
	for _, ls := range v.Links {
		r.Links = append(r.Links, LinkResult{LinkName: ls.Name, Status: ls.ActualState, Error: ls.Error})
	}
	return r
}

// LabProgress counts the nodes and links the agents reported up.
type LabProgress struct {
	NodesUp int `json:"nodes_up"`
	Nodes   int `json:"nodes"`
	LinksUp int `json:"links_up"`
	Links   int `json:"links"`
}

// LinkState is a link's runtime state.
type LinkState struct {
	ID             string   `json:"id"`
	LabID          string   `json:"lab_id"`
	Name           string   `json:"link_name"`
	SourceNode     string   `json:"source_node"`
	SourceIface    string   `json:"source_interface"`
	TargetNode     string   `json:"target_node"`
	TargetIface    string   `json:"target_interface"`
	DesiredState   string   `json:"desired_state"`
	ActualState    string   `json:"actual_state"`
	Error          string   `json:"error,omitempty"`
	CrossHost      bool     `json:"is_cross_host"`
	VNI            *int     `json:"vni"`
	VLANTag        *int     `json:"vlan_tag"`
	SourceTag      *int     `json:"source_vlan_tag"`
	TargetTag      *int     `json:"target_vlan_tag"`
	SourceHost     string   `json:"source_host,omitempty"`
	TargetHost     string   `json:"target_host,omitempty"`
	SourceAttached bool     `json:"source_vxlan_attached"`
	TargetAttached bool     `json:"target_vxlan_attached"`
	PartialHosts   []string `json:"partial_state_hosts,omitempty"`
	Tunnel         *Tunnel  `json:"tunnel,omitempty"`
	// What each side's host last answered for its node interface (and its
	// tunnel end, for a cross-host link), and when; VerifiedAt is the older
	// of the two.
	SourceStatus     string     `json:"source_status,omitempty"`
	SourceError      string     `json:"source_error,omitempty"`
	SourceVerifiedAt *time.Time `json:"source_verified_at,omitempty"`
	TargetStatus     string     `json:"target_status,omitempty"`
	TargetError      string     `json:"target_error,omitempty"`
	TargetVerifiedAt *time.Time `json:"target_verified_at,omitempty"`
	VerifiedAt       *time.Time `json:"verified_at,omitempty"`
	// RequestedMTU is the lab file's (0: the default); MTU is the link's,
	// on both node interfaces and its tunnel, once its hosts are known.
	RequestedMTU       int    `json:"requested_mtu,omitempty"`
	MTU                *int   `json:"mtu"`
	AllowFragmentation bool   `json:"allow_fragmentation,omitempty"`
	SourceMAC          string `json:"source_mac,omitempty"`
	TargetMAC          string `json:"target_mac,omitempty"`
}

// Tunnel is a cross-host link's VXLAN tunnel row.
type Tunnel struct {
	ID       string `json:"id"`
	VNI      int    `json:"vni"`
	AgentA   string `json:"agent_a"`
	IPA      string `json:"agent_a_ip"`
	AgentB   string `json:"agent_b"`
	IPB      string `json:"agent_b_ip"`
	Status   string `json:"status"`
	PortName string `json:"port_name"`
}

// Mapping is where a node interface sits on its host's bridge.
type Mapping struct {
	Node           string     `json:"node"`
	Iface          string     `json:"linux_interface"`
	OVSPort        string     `json:"ovs_port"`
	Bridge         string     `json:"ovs_bridge"`
	Tag            int        `json:"vlan_tag"`
	LastVerifiedAt *time.Time `json:"last_verified_at,omitempty"`
}

// HostNode is the node that stands for a host's own namespace: a lab
// file's host:IFACE endpoints, and the host's address on the lab's
// management network, are its interfaces. One per lab on each host that
// needs it; no runtime node is made for it.
const HostNode = "host"
