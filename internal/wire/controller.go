package wire

import "time"

// HostView is a host as the controller's REST API shows it.
type HostView struct {
	Name          string    `json:"name"`
	Address       string    `json:"address"`
	DataIP        string    `json:"data_ip"`
	Status        string    `json:"status"` // "online", "degraded" or "offline"
	Version       string    `json:"version"`
	Capabilities  []string  `json:"capabilities"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// UnderlayMTU and Underlay are what its agent last reported: the MTU
	// of its data interface and its checks of each peer's path.
	UnderlayMTU int             `json:"underlay_mtu,omitempty"`
	Underlay    []UnderlayCheck `json:"underlay,omitempty"`
	// LastDeclaration is when the controller's last declaration to the
	// host ended. A host that heartbeats but did not answer it is degraded:
	// StatusReason says why, DegradedSince since when.
	LastDeclaration *time.Time `json:"last_declaration,omitempty"`
	StatusReason    string     `json:"status_reason,omitempty"`
	DegradedSince   *time.Time `json:"degraded_since,omitempty"`
}

// NodeResult is how a node's creation went in a deploy.
type NodeResult struct {
	Name         string        `json:"name"`
	Host         string        `json:"host"`
	Status       string        `json:"status"` // up, error, unknown or pending
	Error        string        `json:"error,omitempty"`
	ExecFailures []ExecFailure `json:"exec_failures,omitempty"`
}

// LinkResult is how a link went in a deploy.
type LinkResult struct {
	LinkName string `json:"link_name"`
	Status   string `json:"status"` // the link's actual_state afterwards
	Error    string `json:"error,omitempty"`
}

// DeployResponse answers a deploy or a destroy.
type DeployResponse struct {
	Lab   string       `json:"lab"`
	State string       `json:"state"`
	Error string       `json:"error,omitempty"`
	Nodes []NodeResult `json:"nodes"`
	Links []LinkResult `json:"links"`
}

// AgentConvergence is how one agent's last convergence went.
type AgentConvergence struct {
	Host           string         `json:"host"`
	Generation     int64          `json:"generation"`
	At             time.Time      `json:"at"`
	Nodes          int            `json:"nodes"`              // declared
	Interfaces     int            `json:"interfaces"`         // declared
	Tunnels        int            `json:"tunnels"`            // declared
	Results        map[string]int `json:"results"`            // by status, over nodes, interfaces and tunnels
	OrphansRemoved []string       `json:"orphans_removed"`    // what the declaration removed
	Skipped        string         `json:"skipped,omitempty"`  // the agent could not read its bridge
	Fallback       bool           `json:"fallback,omitempty"` // an old agent: tunnels only, or the whitelist
	Error          string         `json:"error,omitempty"`    // the agent could not be reached or refused
}

// ConvergeResponse answers a convergence run, or lists the last one of each
// agent.
type ConvergeResponse struct {
	Generation int64              `json:"generation"`
	Agents     []AgentConvergence `json:"agents"`
}

// LabPlan is what applying a lab file changes: names of nodes and links,
// and where every node and link of the new lab will be.
type LabPlan struct {
	AddNodes    []string      `json:"add_nodes"`
	RemoveNodes []string      `json:"remove_nodes"`
	ChangeNodes []string      `json:"change_nodes"`
	AddLinks    []string      `json:"add_links"`
	RemoveLinks []string      `json:"remove_links"`
	Nodes       []PlannedNode `json:"nodes"`
	Links       []PlannedLink `json:"links"`
	// RemakeNodes are the nodes the apply removes and makes again, with why.
	RemakeNodes []PlannedRemake `json:"remake_nodes"`
}

// PlannedRemake is a node an apply makes again: what its runtime was given
// changed, or it moves to another host.
type PlannedRemake struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// PlannedNode is where a node will run; From is the host it leaves when it
// moves.
type PlannedNode struct {
	Name string `json:"name"`
	Host string `json:"host"`
	From string `json:"from,omitempty"`
}

// Link kinds in a plan.
const (
	KindSameHost = "same-host"
	KindTunnel   = "tunnel"
)

// PlannedLink is how a link will be made: same-host on one host, or a
// tunnel between two.
type PlannedLink struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Hosts []string `json:"hosts"`
}

// ApplyResponse answers a lab apply: the plan and what the runtime will not
// apply. The deploy runs in the controller after the answer (202); the lab's
// state and progress say how it goes. Deploy is filled by clients that
// waited for it.
type ApplyResponse struct {
	Lab      string          `json:"lab"`
	Created  bool            `json:"created"`
	Plan     LabPlan         `json:"plan"`
	Warnings []string        `json:"warnings"`
	Deploy   *DeployResponse `json:"deploy,omitempty"`
}

// ConvergePlan is what a convergence would declare to each online agent.
type ConvergePlan struct {
	Agents map[string]HostDeclaration `json:"agents"`
}

// ControllerView is a controller that used the database: its id (the URL
// it advertises), whether it holds the leader's lease now, and how long ago
// it was last alive. GET /api/v1/controllers.
type ControllerView struct {
	ID      string        `json:"id"`
	Leader  bool          `json:"leader"`
	SeenAgo time.Duration `json:"seen_ago"`
}
