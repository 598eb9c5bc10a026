package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// NextGeneration hands out the next declaration generation; generations only
// grow, so an agent can refuse a stale declaration (DESIGN §6).
func (s *Store) NextGeneration(ctx context.Context) (int64, error) {
	var g int64
	err := s.queryRow(ctx, `UPDATE declaration_generation SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&g)
	if err != nil {
		return 0, fmt.Errorf("next generation: %w", err)
	}
	return g, nil
}

// Placed is one host that runs nodes of one lab.
type Placed struct {
	Lab  string
	Host string
}

// ConvergenceState reads what overlay convergence needs for every lab, in
// three queries whatever the number of labs and links: hosts, which labs
// each host runs, and every link state with its tunnel.
func (s *Store) ConvergenceState(ctx context.Context) ([]Host, []Placed, []LinkState, error) {
	hosts, err := s.Hosts(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	rows, err := s.query(ctx, `SELECT DISTINCT lab_id, host_id FROM node_placements ORDER BY lab_id, host_id`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read placements: %w", err)
	}
	var placed []Placed
	for rows.Next() {
		var p Placed
		if err := rows.Scan(&p.Lab, &p.Host); err != nil {
			rows.Close()
			return nil, nil, nil, err
		}
		placed = append(placed, p)
	}
	rows.Close()
	links, err := s.linkStates(ctx, "1 = 1")
	if err != nil {
		return nil, nil, nil, err
	}
	return hosts, placed, links, nil
}

// Attachment is one side of a cross-host link as an agent reported it.
type Attachment struct {
	LinkStateID string
	Source      bool // the source side, else the target side
	Attached    bool
}

// SetAttachments records the sides whose attached flag changed, keyed by
// link state and side, never by link name (W-2).
func (s *Store) SetAttachments(ctx context.Context, as []Attachment) error {
	if len(as) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, a := range as {
			col := "target_vxlan_attached"
			if a.Source {
				col = "source_vxlan_attached"
			}
			if _, err := s.txExec(ctx, tx, `UPDATE link_states SET `+col+` = ? WHERE id = ?`, a.Attached, a.LinkStateID); err != nil {
				return err
			}
		}
		return nil
	})
}

// CleanupOrphans deletes tunnel rows without a link state and link states
// without a link definition: what a lab edit or an interrupted delete left.
// The agents drop the matching ports at the next convergence, since no one
// declares them any more.
func (s *Store) CleanupOrphans(ctx context.Context) (tunnels, links int64, err error) {
	r, err := s.exec(ctx, `DELETE FROM vxlan_tunnels WHERE link_state_id IS NULL`)
	if err != nil {
		return 0, 0, fmt.Errorf("clean up tunnels: %w", err)
	}
	tunnels, _ = r.RowsAffected()
	r, err = s.exec(ctx, `DELETE FROM link_states WHERE link_definition_id IS NULL`)
	if err != nil {
		return tunnels, 0, fmt.Errorf("clean up link states: %w", err)
	}
	links, _ = r.RowsAffected()
	return tunnels, links, nil
}

// DuplicateVNIs lists VNIs that more than one tunnel row carries. The unique
// constraint on link_states.vni keeps this empty; a non-empty answer means
// rows were written around the store and needs a human (W-23).
func (s *Store) DuplicateVNIs(ctx context.Context) ([]int, error) {
	rows, err := s.query(ctx, `SELECT vni FROM vxlan_tunnels GROUP BY vni HAVING COUNT(*) > 1`)
	if err != nil {
		return nil, fmt.Errorf("find duplicate tunnels: %w", err)
	}
	defer rows.Close()
	var vnis []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vnis = append(vnis, v)
	}
	return vnis, rows.Err()
}

// AllMappings reads every interface mapping, keyed by lab, in one query.
func (s *Store) AllMappings(ctx context.Context) (map[string][]Mapping, error) {
	rows, err := s.query(ctx, `SELECT m.lab_id, n.name, m.linux_interface, COALESCE(m.ovs_port, ''), COALESCE(m.ovs_bridge, ''),
		COALESCE(m.vlan_tag, 0), m.last_verified_at FROM interface_mappings m JOIN nodes n ON n.id = m.node_id`)
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	defer rows.Close()
	out := map[string][]Mapping{}
	for rows.Next() {
		var lab string
		var m Mapping
		var verified sql.NullTime
		if err := rows.Scan(&lab, &m.Node, &m.Iface, &m.OVSPort, &m.Bridge, &m.Tag, &verified); err != nil {
			return nil, err
		}
		if verified.Valid {
			v := verified.Time.UTC()
			m.LastVerifiedAt = &v
		}
		out[lab] = append(out[lab], m)
	}
	return out, rows.Err()
}

// TouchMappings marks a lab's mappings of the given ports as verified now,
// in one statement.
func (s *Store) TouchMappings(ctx context.Context, labID string, ports []string) error {
	if len(ports) == 0 {
		return nil
	}
	args := []any{now(), labID}
	marks := make([]string, len(ports))
	for i, p := range ports {
		marks[i] = "?"
		args = append(args, p)
	}
	_, err := s.exec(ctx, `UPDATE interface_mappings SET last_verified_at = ? WHERE lab_id = ? AND ovs_port IN (`+strings.Join(marks, ", ")+`)`, args...)
	return err
}
