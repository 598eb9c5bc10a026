package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/netloom/netloom/internal/ident"
)

// Link actual states.
const (
	LinkUnknown  = "unknown"
	LinkCreating = "creating"
	LinkUp       = "up"
	LinkDown     = "down"
	LinkError    = "error"
)

// PartialStatePrefix starts the error of a cross-host link one side of which
// still holds state after a failed rollback.
const PartialStatePrefix = "PARTIAL_STATE: "

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

// linkStates reads link states with their tunnels, filtered by where (on
// alias ls) with args.
func (s *Store) linkStates(ctx context.Context, where string, args ...any) ([]LinkState, error) {
	rows, err := s.query(ctx, `SELECT ls.id, ls.lab_id, ls.link_name, ls.source_node, ls.source_interface,
		ls.target_node, ls.target_interface, ls.desired_state, ls.actual_state, ls.error_message, ls.is_cross_host,
		ls.vni, ls.vlan_tag, ls.source_vlan_tag, ls.target_vlan_tag, COALESCE(ls.source_host_id, ''), COALESCE(ls.target_host_id, ''),
		ls.source_vxlan_attached, ls.target_vxlan_attached, ls.partial_state_hosts,
		vt.id, vt.vni, vt.agent_a_id, vt.agent_a_ip, vt.agent_b_id, vt.agent_b_ip, vt.status, vt.port_name
		FROM link_states ls LEFT JOIN vxlan_tunnels vt ON vt.link_state_id = ls.id
		WHERE `+where+` ORDER BY ls.link_name`, args...)
	if err != nil {
		return nil, fmt.Errorf("read link states: %w", err)
	}
	defer rows.Close()
	var out []LinkState
	for rows.Next() {
		var ls LinkState
		var vni, tag, st, tt sql.NullInt64
		var partial string
		var tID, tA, tIPA, tB, tIPB, tStatus, tPort sql.NullString
		var tVNI sql.NullInt64
		if err := rows.Scan(&ls.ID, &ls.LabID, &ls.Name, &ls.SourceNode, &ls.SourceIface, &ls.TargetNode, &ls.TargetIface,
			&ls.DesiredState, &ls.ActualState, &ls.Error, &ls.CrossHost, &vni, &tag, &st, &tt, &ls.SourceHost, &ls.TargetHost,
			&ls.SourceAttached, &ls.TargetAttached, &partial, &tID, &tVNI, &tA, &tIPA, &tB, &tIPB, &tStatus, &tPort); err != nil {
			return nil, fmt.Errorf("read link states: %w", err)
		}
		ls.VNI, ls.VLANTag, ls.SourceTag, ls.TargetTag = intPtr(vni), intPtr(tag), intPtr(st), intPtr(tt)
		ls.PartialHosts = splitHosts(partial)
		if tID.Valid {
			ls.Tunnel = &Tunnel{ID: tID.String, VNI: int(tVNI.Int64), AgentA: tA.String, IPA: tIPA.String, AgentB: tB.String,
				IPB: tIPB.String, Status: tStatus.String, PortName: portNameOr(tPort, ls.LabID, ls.Name)}
		}
		out = append(out, ls)
	}
	return out, rows.Err()
}

// SetLinkCreating commits, before any agent is called, that a link is being
// made and where its ends are, so that convergence declares it as a
// placeholder instead of removing what the agents are building (W-4).
func (s *Store) SetLinkCreating(ctx context.Context, id, sourceHost, targetHost string) error {
	_, err := s.exec(ctx, `UPDATE link_states SET actual_state = ?, source_host_id = ?, target_host_id = ?,
		is_cross_host = ?, updated_at = ? WHERE id = ?`, LinkCreating, sourceHost, targetHost, sourceHost != targetHost, now(), id)
	return err
}

// vniSpan is how far AllocateVNI probes past the first choice.
const vniSpan = 16_000_000

// AllocateVNI gives a link its VNI: the one it has, or the identifier
// formula's first choice, or the next free one when another link holds
// that (W-26). The database's unique constraint decides.
func (s *Store) AllocateVNI(ctx context.Context, linkStateID, lab, link string) (int, error) {
	var cur sql.NullInt64
	if err := s.queryRow(ctx, `SELECT vni FROM link_states WHERE id = ?`, linkStateID).Scan(&cur); err != nil {
		return 0, fmt.Errorf("allocate vni of %s: %w", link, err)
	}
	if cur.Valid {
		return int(cur.Int64), nil
	}
	first := int(ident.VNI(lab, link))
	for i := range 1000 {
		vni := (first-ident.VNIBase+i)%vniSpan + ident.VNIBase
		_, err := s.exec(ctx, `UPDATE link_states SET vni = ? WHERE id = ? AND vni IS NULL`, vni, linkStateID)
		if err == nil {
			if i > 0 {
				s.log.Warn("vni collision: probed", "lab", lab, "link", link, "vni", vni, "first_choice", first)
			}
			return vni, nil
		}
		if !isUnique(err) {
			return 0, fmt.Errorf("allocate vni of %s: %w", link, err)
		}
	}
	return 0, fmt.Errorf("allocate vni of %s: 1000 VNIs from %d are taken", link, first)
}

// SetSameHostUp records a same-host link as up on its shared tag.
func (s *Store) SetSameHostUp(ctx context.Context, id string, tag int) error {
	_, err := s.exec(ctx, `UPDATE link_states SET actual_state = ?, error_message = '', vlan_tag = ?,
		source_vlan_tag = ?, target_vlan_tag = ?, partial_state_hosts = '', updated_at = ? WHERE id = ?`, LinkUp, tag, tag, tag, now(), id)
	return err
}

// CrossHostUp is what a made cross-host link records.
type CrossHostUp struct {
	LinkStateID, LabID, LinkName string
	VNI                          int
	SourceTag, TargetTag         int
	SourceHost, SourceIP         string // side a: the link's source
	TargetHost, TargetIP         string
}

// SetCrossHostUp records a cross-host link as up and writes its tunnel row
// with the addresses actually used and the port name, in one transaction.
func (s *Store) SetCrossHostUp(ctx context.Context, u CrossHostUp) error {
	t := now()
	port := ident.PortName(u.LabID, u.LinkName)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `UPDATE link_states SET actual_state = ?, error_message = '', vni = ?, vlan_tag = NULL,
			source_vlan_tag = ?, target_vlan_tag = ?, source_vxlan_attached = ?, target_vxlan_attached = ?, partial_state_hosts = '',
			updated_at = ? WHERE id = ?`, LinkUp, u.VNI, u.SourceTag, u.TargetTag, true, true, t, u.LinkStateID); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, `INSERT INTO vxlan_tunnels (id, lab_id, link_state_id, vni, agent_a_id, agent_a_ip,
			agent_b_id, agent_b_ip, status, port_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)
			ON CONFLICT (link_state_id) DO UPDATE SET vni = excluded.vni, agent_a_id = excluded.agent_a_id, agent_a_ip = excluded.agent_a_ip,
			agent_b_id = excluded.agent_b_id, agent_b_ip = excluded.agent_b_ip, status = 'active', port_name = excluded.port_name,
			updated_at = excluded.updated_at`,
			newID(), u.LabID, u.LinkStateID, u.VNI, u.SourceHost, u.SourceIP, u.TargetHost, u.TargetIP, port, t, t)
		return err
	})
}

// SetLinkFailed records a link that could not be made: state (error, or
// pending while waiting), why, and the hosts that still hold its state when
// a rollback failed (then why starts with PartialStatePrefix).
func (s *Store) SetLinkFailed(ctx context.Context, id, state, why string, partialHosts []string) error {
	_, err := s.exec(ctx, `UPDATE link_states SET actual_state = ?, error_message = ?, partial_state_hosts = ?,
		source_vxlan_attached = ?, target_vxlan_attached = ?, updated_at = ? WHERE id = ?`,
		state, why, strings.Join(partialHosts, ","), false, false, now(), id)
	return err
}

// ResetLinks marks a destroyed lab's links down and drops their tunnels and
// mappings; each link keeps its VNI.
func (s *Store) ResetLinks(ctx context.Context, labID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM vxlan_tunnels WHERE lab_id = ?`,
			`DELETE FROM interface_mappings WHERE lab_id = ?`,
		} {
			if _, err := s.txExec(ctx, tx, q, labID); err != nil {
				return err
			}
		}
		_, err := s.txExec(ctx, tx, `UPDATE link_states SET actual_state = ?, error_message = '', vlan_tag = NULL,
			source_vlan_tag = NULL, target_vlan_tag = NULL, source_vxlan_attached = ?, target_vxlan_attached = ?,
			partial_state_hosts = '', updated_at = ? WHERE lab_id = ?`, LinkDown, false, false, now(), labID)
		return err
	})
}

// UpsertMappings records node interfaces' ports and tags as just verified.
func (s *Store) UpsertMappings(ctx context.Context, labID string, ms []Mapping) error {
	if len(ms) == 0 {
		return nil
	}
	t := now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range ms {
			_, err := s.txExec(ctx, tx, `INSERT INTO interface_mappings (id, lab_id, node_id, ovs_port, ovs_bridge, vlan_tag,
				linux_interface, updated_at, last_verified_at)
				SELECT ?, n.lab_id, n.id, ?, ?, ?, ?, ?, ? FROM nodes n WHERE n.lab_id = ? AND n.name = ?
				ON CONFLICT (lab_id, node_id, linux_interface) DO UPDATE SET ovs_port = excluded.ovs_port,
				ovs_bridge = excluded.ovs_bridge, vlan_tag = excluded.vlan_tag, updated_at = excluded.updated_at,
				last_verified_at = excluded.last_verified_at`,
				newID(), m.OVSPort, m.Bridge, m.Tag, m.Iface, t, t, labID, m.Node)
			if err != nil {
				return fmt.Errorf("mapping of %s:%s: %w", m.Node, m.Iface, err)
			}
		}
		return nil
	})
}

func (s *Store) mappings(ctx context.Context, labID string) ([]Mapping, error) {
	rows, err := s.query(ctx, `SELECT n.name, m.linux_interface, COALESCE(m.ovs_port, ''), COALESCE(m.ovs_bridge, ''),
		COALESCE(m.vlan_tag, 0), m.last_verified_at FROM interface_mappings m JOIN nodes n ON n.id = m.node_id
		WHERE m.lab_id = ? ORDER BY n.name, m.linux_interface`, labID)
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	defer rows.Close()
	var out []Mapping
	for rows.Next() {
		var m Mapping
		var verified sql.NullTime
		if err := rows.Scan(&m.Node, &m.Iface, &m.OVSPort, &m.Bridge, &m.Tag, &verified); err != nil {
			return nil, err
		}
		if verified.Valid {
			v := verified.Time.UTC()
			m.LastVerifiedAt = &v
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
