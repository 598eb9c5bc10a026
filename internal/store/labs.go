package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// Lab states.
const (
	LabStopped  = "stopped"
	LabStarting = "starting"
	LabRunning  = "running"
	LabStopping = "stopping"
	LabError    = "error"
)

// CreateLab stores a lab with its nodes, links and a link state per link, in
// one transaction. ErrConflict when the name is taken. A lab's id is its
// name: it is the lab_id agents see, so node namespaces read nl-<name>-<node>
// and port names and VNIs follow from the name.
func (s *Store) CreateLab(ctx context.Context, l topology.Lab) (Lab, error) {
	lab := Lab{ID: l.Name, Name: l.Name, State: LabStopped, CreatedAt: now()}
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `INSERT INTO labs (id, name, state, created_at, files, mgmt_subnet) VALUES (?, ?, ?, ?, ?, ?)`,
			lab.ID, lab.Name, lab.State, lab.CreatedAt, jsonFiles(l.Files), l.Mgmt.Subnet); err != nil {
			if isUnique(err) {
				return fmt.Errorf("lab %s: %w", l.Name, ErrConflict)
			}
			return err
		}
		for _, n := range l.Nodes {
			if err := s.insertNode(ctx, tx, lab.ID, n); err != nil {
				return err
			}
		}
		for _, link := range l.Links {
			if err := s.insertLink(ctx, tx, lab.ID, link); err != nil {
				return err
			}
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return Lab{}, fmt.Errorf("create lab %s: %w", l.Name, err)
	}
	return lab, nil
}

func (s *Store) insertNode(ctx context.Context, tx *sql.Tx, labID string, n topology.Node) error {
	_, err := s.txExec(ctx, tx, `INSERT INTO nodes (id, lab_id, name, kind, image, host_id, exec, settings, mgmt_ipv4, network_mode)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		newID(), labID, n.Name, n.Kind, n.Image, nullString(n.Host), jsonList(n.Exec), jsonSettings(n.NodeSettings), n.MgmtIPv4, n.NetworkMode)
	return err
}

func jsonSettings(ns wire.NodeSettings) string {
	if ns.IsZero() {
		return "{}"
	}
	b, _ := json.Marshal(ns)
	return string(b)
}

func jsonFiles(files map[string][]byte) string {
	if len(files) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(files)
	return string(b)
}

// insertLink stores a link and its link state; the source is the lexically
// smaller endpoint, as in the link's name.
func (s *Store) insertLink(ctx context.Context, tx *sql.Tx, labID string, link topology.Link) error {
	a, b := link.A, link.B
	if b.String() < a.String() {
		a, b = b, a
	}
	id := newID()
	if _, err := s.txExec(ctx, tx, `INSERT INTO links (id, lab_id, link_name, source_node, source_interface, target_node, target_interface)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id, labID, link.Name(), a.Node, a.Iface, b.Node, b.Iface); err != nil {
		return err
	}
	frag := 0
	if link.AllowFragmentation {
		frag = 1
	}
	_, err := s.txExec(ctx, tx, `INSERT INTO link_states (id, lab_id, link_definition_id, link_name, source_node, source_interface,
		target_node, target_interface, updated_at, mtu, allow_fragmentation, source_mac, target_mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		newID(), labID, id, link.Name(), a.Node, a.Iface, b.Node, b.Iface, now(), link.MTU, frag, a.MAC, b.MAC)
	return err
}

// LabChange is an edit of a stored lab: what a new version of its file
// adds, removes and changes.
type LabChange struct {
	AddNodes    []topology.Node
	RemoveNodes []string
	ChangeNodes []topology.Node // same name, other settings
	AddLinks    []topology.Link
	RemoveLinks []string // link names
	// Files replace the lab's shipped files.
	Files map[string][]byte
	// MgmtSubnet, when not nil, is the lab's new management subnet.
	MgmtSubnet *string
}

// Empty reports whether the change changes nothing.
func (c LabChange) Empty() bool {
	return len(c.AddNodes)+len(c.RemoveNodes)+len(c.ChangeNodes)+len(c.AddLinks)+len(c.RemoveLinks) == 0 && c.MgmtSubnet == nil
}

// UpdateLab applies a change to a stored lab in one transaction. Removed
// links go with their link states and tunnels, removed nodes with their
// placements and mappings; the next declaration to their hosts removes them
// there.
func (s *Store) UpdateLab(ctx context.Context, labID string, c LabChange) error {
	return s.txDesired(ctx, func(tx *sql.Tx) error {
		for _, name := range c.RemoveLinks {
			for _, q := range []string{`DELETE FROM link_states WHERE lab_id = ? AND link_name = ?`, `DELETE FROM links WHERE lab_id = ? AND link_name = ?`} {
				if _, err := s.txExec(ctx, tx, q, labID, name); err != nil {
					return fmt.Errorf("remove link %s: %w", name, err)
				}
			}
		}
		for _, name := range c.RemoveNodes {
			for _, q := range []string{`DELETE FROM node_placements WHERE lab_id = ? AND node_name = ?`, `DELETE FROM nodes WHERE lab_id = ? AND name = ?`} {
				if _, err := s.txExec(ctx, tx, q, labID, name); err != nil {
					return fmt.Errorf("remove node %s: %w", name, err)
				}
			}
		}
		if _, err := s.txExec(ctx, tx, `UPDATE labs SET files = ? WHERE id = ?`, jsonFiles(c.Files), labID); err != nil {
			return fmt.Errorf("files: %w", err)
		}
		if c.MgmtSubnet != nil {
			// The next round gives the nodes and hosts addresses in it.
			if _, err := s.txExec(ctx, tx, `UPDATE labs SET mgmt_subnet = ? WHERE id = ?`, *c.MgmtSubnet, labID); err != nil {
				return fmt.Errorf("mgmt subnet: %w", err)
			}
		}
		for _, n := range c.ChangeNodes {
			if _, err := s.txExec(ctx, tx, `UPDATE nodes SET kind = ?, image = ?, host_id = ?, exec = ?, settings = ?, mgmt_ipv4 = ?, network_mode = ?
				WHERE lab_id = ? AND name = ?`,
				n.Kind, n.Image, nullString(n.Host), jsonList(n.Exec), jsonSettings(n.NodeSettings), n.MgmtIPv4, n.NetworkMode, labID, n.Name); err != nil {
				return fmt.Errorf("change node %s: %w", n.Name, err)
			}
		}
		for _, n := range c.AddNodes {
			if err := s.insertNode(ctx, tx, labID, n); err != nil {
				return fmt.Errorf("add node %s: %w", n.Name, err)
			}
		}
		for _, l := range c.AddLinks {
			if err := s.insertLink(ctx, tx, labID, l); err != nil {
				return fmt.Errorf("add link %s: %w", l.Name(), err)
			}
		}
		return s.bumpLabs(ctx, tx, map[string]bool{labID: true})
	})
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func jsonFailures(l []wire.ExecFailure) string {
	if l == nil {
		l = []wire.ExecFailure{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// The shapes of labs, links and mappings are the REST API's (package wire).
type (
	Lab       = wire.Lab
	Node      = wire.Node
	LabView   = wire.LabView
	LinkState = wire.LinkState
	Tunnel    = wire.Tunnel
	Mapping   = wire.Mapping
)

// LabByName returns a lab's row, looked up by name or id.
func (s *Store) LabByName(ctx context.Context, nameOrID string) (Lab, error) {
	var l Lab
	err := s.queryRow(ctx, `SELECT id, name, state, state_error, created_at, mgmt_subnet FROM labs WHERE name = ? OR id = ?`, nameOrID, nameOrID).
		Scan(&l.ID, &l.Name, &l.State, &l.StateError, &l.CreatedAt, &l.MgmtSubnet)
	if errors.Is(err, sql.ErrNoRows) {
		return Lab{}, fmt.Errorf("lab %s: %w", nameOrID, ErrNotFound)
	}
	l.CreatedAt = l.CreatedAt.UTC()
	return l, err
}

// Labs lists every lab by name.
func (s *Store) Labs(ctx context.Context) ([]Lab, error) { return s.labs(ctx, "1 = 1") }

// labs lists the labs that where (with args) selects, by name.
func (s *Store) labs(ctx context.Context, where string, args ...any) ([]Lab, error) {
	rows, err := s.query(ctx, `SELECT id, name, state, state_error, created_at, mgmt_subnet FROM labs WHERE `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	defer rows.Close()
	var labs []Lab
	for rows.Next() {
		var l Lab
		if err := rows.Scan(&l.ID, &l.Name, &l.State, &l.StateError, &l.CreatedAt, &l.MgmtSubnet); err != nil {
			return nil, err
		}
		l.CreatedAt = l.CreatedAt.UTC()
		labs = append(labs, l)
	}
	return labs, rows.Err()
}

// LabView returns a lab with its nodes, placements, link states, tunnels and
// interface mappings, in four queries whatever the lab's size.
func (s *Store) LabView(ctx context.Context, nameOrID string) (LabView, error) {
	l, err := s.LabByName(ctx, nameOrID)
	if err != nil {
		return LabView{}, err
	}
	v := LabView{Lab: l, Nodes: []Node{}, Links: []LinkState{}}
	nodes, err := s.nodes(ctx, 0, "n.lab_id = ?", l.ID)
	if err != nil {
		return LabView{}, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	for _, n := range nodes {
		v.Nodes = append(v.Nodes, n.Node)
	}
	if v.Links, err = s.linkStates(ctx, 0, "ls.lab_id = ?", l.ID); err != nil {
		return LabView{}, err
	}
	if v.Maps, err = s.mappings(ctx, l.ID); err != nil {
		return LabView{}, err
	}
	if v.Mgmt, err = s.mgmtSegments(ctx, "lab_id = ?", l.ID); err != nil {
		return LabView{}, err
	}
	v.Progress = progress(v.Nodes, v.Links)
	return v, nil
}

// progress counts what the agents reported up.
func progress(nodes []Node, links []LinkState) wire.LabProgress {
	p := wire.LabProgress{Nodes: len(nodes), Links: len(links)}
	for _, n := range nodes {
		if n.Status == LinkUp {
			p.NodesUp++
		}
	}
	for _, ls := range links {
		if ls.ActualState == LinkUp {
			p.LinksUp++
		}
	}
	return p
}

// LabNode is a node of a lab, with its placement.
type LabNode struct {
	Lab string
	Node
}

// nodes reads nodes with their placements, filtered by where (on alias n)
// with args, by lab and name; size is how many are likely. They are sorted
// here: on PostgreSQL, an ORDER BY makes the planner walk the index and
// look every placement up one by one, five times slower than a hash join
// at 200 000 nodes.
func (s *Store) nodes(ctx context.Context, size int, where string, args ...any) ([]LabNode, error) {
	rows, err := s.query(ctx, `SELECT n.lab_id, n.id, n.name, n.kind, n.image, n.exec, n.settings, COALESCE(n.host_id, ''),
		COALESCE(p.host_id, ''), COALESCE(p.runtime_id, ''), COALESCE(p.status, ''), COALESCE(p.error, ''), p.verified_at, h.verified_at,
		COALESCE(p.exec_failures, '[]'), n.mgmt_ipv4, n.network_mode, n.mgmt_address
		FROM nodes n LEFT JOIN node_placements p ON p.lab_id = n.lab_id AND p.node_name = n.name LEFT JOIN hosts h ON h.name = p.host_id
		WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	defer rows.Close()
	out := make([]LabNode, 0, size)
	for rows.Next() {
		var n LabNode
		var exec, settings, failures string
		var verified, host sql.NullTime
		if err := rows.Scan(&n.Lab, &n.ID, &n.Name, &n.Kind, &n.Image, &exec, &settings, &n.Host, &n.PlacedOn, &n.RuntimeID, &n.Status, &n.Error, &verified, &host, &failures,
			&n.MgmtIPv4, &n.NetworkMode, &n.MgmtAddress); err != nil {
			return nil, fmt.Errorf("read nodes: %w", err)
		}
		if exec != "[]" { // most nodes: spare the decoder
			if err := json.Unmarshal([]byte(exec), &n.Exec); err != nil {
				return nil, fmt.Errorf("node %s exec: %w", n.Name, err)
			}
		}
		if failures != "[]" {
			if err := json.Unmarshal([]byte(failures), &n.ExecFailures); err != nil {
				return nil, fmt.Errorf("node %s exec failures: %w", n.Name, err)
			}
		}
		if settings != "{}" {
			if err := json.Unmarshal([]byte(settings), &n.NodeSettings); err != nil {
				return nil, fmt.Errorf("node %s settings: %w", n.Name, err)
			}
		}
		n.VerifiedAt = verifiedAt(n.Status, verified, host)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	sortRows(out, func(a, b *LabNode) int { return cmp.Or(strings.Compare(a.Lab, b.Lab), strings.Compare(a.Name, b.Name)) })
	return out, nil
}

// LabFiles returns the files shipped with each lab that has any, by lab id.
func (s *Store) LabFiles(ctx context.Context) (map[string]map[string][]byte, error) {
	return s.labFiles(ctx, "1 = 1")
}

// labFiles returns the files of the labs that where (with args) selects.
func (s *Store) labFiles(ctx context.Context, where string, args ...any) (map[string]map[string][]byte, error) {
	rows, err := s.query(ctx, `SELECT id, files FROM labs WHERE files <> '{}' AND `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read lab files: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string][]byte{}
	for rows.Next() {
		var id, files string
		if err := rows.Scan(&id, &files); err != nil {
			return nil, fmt.Errorf("read lab files: %w", err)
		}
		var m map[string][]byte
		if err := json.Unmarshal([]byte(files), &m); err != nil {
			return nil, fmt.Errorf("lab %s files: %w", id, err)
		}
		out[id] = m
	}
	return out, rows.Err()
}

// SetLabState records a lab's state and why.
func (s *Store) SetLabState(ctx context.Context, labID, state, why string) error {
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `UPDATE labs SET state = ?, state_error = ? WHERE id = ?`, state, why, labID); err != nil {
			return err
		}
		return s.bumpLabs(ctx, tx, map[string]bool{labID: true})
	})
	if err != nil {
		return fmt.Errorf("set lab %s %s: %w", labID, state, err)
	}
	return nil
}

// DeleteLab removes a lab and everything of it.
func (s *Store) DeleteLab(ctx context.Context, labID string) error {
	return s.txDesired(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, `DELETE FROM labs WHERE id = ?`, labID)
		if err != nil {
			return fmt.Errorf("delete lab: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("lab %s: %w", labID, ErrNotFound)
		}
		return s.bump(ctx, tx)
	})
}

// SetPlacements records where nodes run (node → host): new placements and
// moves, each pending until its host answers a declaration.
func (s *Store) SetPlacements(ctx context.Context, labID string, hosts map[string]string) error {
	return s.txDesired(ctx, func(tx *sql.Tx) error {
		for node, host := range hosts {
			_, err := s.txExec(ctx, tx, `INSERT INTO node_placements (id, lab_id, node_name, host_id, status) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (lab_id, node_name) DO UPDATE SET host_id = excluded.host_id, status = excluded.status,
				runtime_id = '', error = '', verified_at = NULL, exec_failures = '[]'`, newID(), labID, node, host, LinkPending)
			if err != nil {
				return fmt.Errorf("place %s: %w", node, err)
			}
		}
		return s.bumpLabs(ctx, tx, map[string]bool{labID: true})
	})
}

// NodeLoad counts the nodes placed on each host, over all labs.
func (s *Store) NodeLoad(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, `SELECT host_id, COUNT(*) FROM node_placements GROUP BY host_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	load := map[string]int{}
	for rows.Next() {
		var h string
		var n int
		if err := rows.Scan(&h, &n); err != nil {
			return nil, err
		}
		load[h] = n
	}
	return load, rows.Err()
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// portNameOr returns the stored port name, or computes it for rows written
// before migration 2.
func portNameOr(stored sql.NullString, lab, link string) string {
	if stored.Valid && stored.String != "" {
		return stored.String
	}
	return ident.PortName(lab, link)
}

func splitHosts(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
