package store

import (
	"context"
	"database/sql"
	"fmt"
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
