package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// States of a link, of each of its sides and of a node, as the agents
// answered them: up (every part converged), error (an agent reported a
// failure, with its reason), unknown (an agent could not be asked or could
// not read its bridge: never up on stale data), pending (declared, not yet
// answered), down (its lab is stopped).
const (
	LinkUnknown = "unknown"
	LinkPending = "pending"
	LinkUp      = "up"
	LinkDown    = "down"
	LinkError   = "error"
)

// PartialStatePrefix starts the error of a cross-host link one side of which
// converged while the other failed; its partial_state_hosts name the hosts
// that hold state.
const PartialStatePrefix = "PARTIAL_STATE: "

// verifiedAt is when an object was last verified: when its row was last
// written from an answer, or, if its state is an answer (up or error), when
// its host last answered a declaration, which covered it.
func verifiedAt(status string, row, host sql.NullTime) *time.Time {
	if (status == LinkUp || status == LinkError) && host.Valid && (!row.Valid || host.Time.After(row.Time)) {
		return timePtr(host)
	}
	return timePtr(row)
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

// linkStates reads link states with their tunnels, filtered by where (on
// alias ls) with args, by name; size is how many are likely. They are
// sorted here: PostgreSQL sorts 100 000 rows this wide on disk.
func (s *Store) linkStates(ctx context.Context, size int, where string, args ...any) ([]LinkState, error) {
	rows, err := s.query(ctx, `SELECT ls.id, ls.lab_id, ls.link_name, ls.source_node, ls.source_interface,
		ls.target_node, ls.target_interface, ls.desired_state, ls.actual_state, ls.error_message, ls.is_cross_host,
		ls.vni, ls.vlan_tag, ls.source_vlan_tag, ls.target_vlan_tag, COALESCE(ls.source_host_id, ''), COALESCE(ls.target_host_id, ''),
		ls.source_vxlan_attached, ls.target_vxlan_attached, ls.partial_state_hosts,
		ls.source_status, ls.source_error, ls.source_verified_at, ls.target_status, ls.target_error, ls.target_verified_at,
		vt.id, vt.vni, vt.agent_a_id, vt.agent_a_ip, vt.agent_b_id, vt.agent_b_ip, vt.status, vt.port_name,
		hs.verified_at, ht.verified_at, ls.mtu, ls.link_mtu, ls.allow_fragmentation, ls.source_mac, ls.target_mac
		FROM link_states ls LEFT JOIN vxlan_tunnels vt ON vt.link_state_id = ls.id
		LEFT JOIN hosts hs ON hs.name = ls.source_host_id LEFT JOIN hosts ht ON ht.name = ls.target_host_id
		WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read link states: %w", err)
	}
	defer rows.Close()
	out := make([]LinkState, 0, size)
	for rows.Next() {
		var ls LinkState
		var vni, tag, st, tt sql.NullInt64
		var partial string
		var tID, tA, tIPA, tB, tIPB, tStatus, tPort sql.NullString
		var tVNI sql.NullInt64
		var sv, tv, hsv, htv sql.NullTime
		var mtu sql.NullInt64
		var frag int
		if err := rows.Scan(&ls.ID, &ls.LabID, &ls.Name, &ls.SourceNode, &ls.SourceIface, &ls.TargetNode, &ls.TargetIface,
			&ls.DesiredState, &ls.ActualState, &ls.Error, &ls.CrossHost, &vni, &tag, &st, &tt, &ls.SourceHost, &ls.TargetHost,
			&ls.SourceAttached, &ls.TargetAttached, &partial, &ls.SourceStatus, &ls.SourceError, &sv, &ls.TargetStatus, &ls.TargetError, &tv,
			&tID, &tVNI, &tA, &tIPA, &tB, &tIPB, &tStatus, &tPort, &hsv, &htv,
			&ls.RequestedMTU, &mtu, &frag, &ls.SourceMAC, &ls.TargetMAC); err != nil {
			return nil, fmt.Errorf("read link states: %w", err)
		}
		ls.VNI, ls.VLANTag, ls.SourceTag, ls.TargetTag = intPtr(vni), intPtr(tag), intPtr(st), intPtr(tt)
		ls.MTU, ls.AllowFragmentation = intPtr(mtu), frag != 0
		ls.SourceVerifiedAt, ls.TargetVerifiedAt = verifiedAt(ls.SourceStatus, sv, hsv), verifiedAt(ls.TargetStatus, tv, htv)
		if ls.SourceVerifiedAt != nil && ls.TargetVerifiedAt != nil {
			ls.VerifiedAt = ls.SourceVerifiedAt
			if ls.TargetVerifiedAt.Before(*ls.VerifiedAt) {
				ls.VerifiedAt = ls.TargetVerifiedAt
			}
		}
		ls.PartialHosts = splitHosts(partial)
		if tID.Valid {
			ls.Tunnel = &Tunnel{ID: tID.String, VNI: int(tVNI.Int64), AgentA: tA.String, IPA: tIPA.String, AgentB: tB.String,
				IPB: tIPB.String, Status: tStatus.String, PortName: portNameOr(tPort, ls.LabID, ls.Name)}
		}
		out = append(out, ls)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read link states: %w", err)
	}
	sortRows(out, func(a, b *LinkState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// resetLinks marks a destroyed lab's links down and drops their tags,
// tunnels and mappings, and its management segments; each link keeps its
// VNI.
func (s *Store) resetLinks(ctx context.Context, tx *sql.Tx, labID string) error {
	for _, q := range []string{
		`DELETE FROM vxlan_tunnels WHERE lab_id = ?`,
		`DELETE FROM interface_mappings WHERE lab_id = ?`,
		`DELETE FROM mgmt_segments WHERE lab_id = ?`,
	} {
		if _, err := s.txExec(ctx, tx, q, labID); err != nil {
			return err
		}
	}
	_, err := s.txExec(ctx, tx, `UPDATE link_states SET actual_state = ?, error_message = '', vlan_tag = NULL,
		source_vlan_tag = NULL, target_vlan_tag = NULL, source_host_id = NULL, target_host_id = NULL, is_cross_host = ?,
		source_vxlan_attached = ?, target_vxlan_attached = ?, partial_state_hosts = '',
		source_status = '', source_error = '', source_verified_at = NULL, target_status = '', target_error = '',
		target_verified_at = NULL, updated_at = ? WHERE lab_id = ?`, LinkDown, false, false, false, now(), labID)
	return err
}

func (s *Store) mappings(ctx context.Context, labID string) ([]Mapping, error) {
	rows, err := s.query(ctx, `SELECT n.name, m.linux_interface, COALESCE(m.ovs_port, ''), COALESCE(m.ovs_bridge, ''),
		COALESCE(m.vlan_tag, 0), m.last_verified_at, COALESCE(p.status, ''), h.verified_at
		FROM interface_mappings m JOIN nodes n ON n.id = m.node_id
		LEFT JOIN node_placements p ON p.lab_id = n.lab_id AND p.node_name = n.name LEFT JOIN hosts h ON h.name = p.host_id
		WHERE m.lab_id = ? ORDER BY n.name, m.linux_interface`, labID)
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	defer rows.Close()
	var out []Mapping
	for rows.Next() {
		var m Mapping
		var verified, host sql.NullTime
		var status string
		if err := rows.Scan(&m.Node, &m.Iface, &m.OVSPort, &m.Bridge, &m.Tag, &verified, &status, &host); err != nil {
			return nil, err
		}
		m.LastVerifiedAt = verifiedAt(status, verified, host)
		out = append(out, m)
	}
	return out, rows.Err()
}
