package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// MgmtSegment is a lab's management network on one host.
type MgmtSegment = wire.MgmtSegment

// mgmtSegments reads management segments filtered by where, by lab and
// host; each but a lab's hub names the hub.
func (s *Store) mgmtSegments(ctx context.Context, where string, args ...any) ([]MgmtSegment, error) {
	rows, err := s.query(ctx, `SELECT m.lab_id, m.host_id, m.address, m.vlan_tag, m.vni, m.status, m.error, m.verified_at, h.verified_at
		FROM mgmt_segments m LEFT JOIN hosts h ON h.name = m.host_id WHERE `+where+` ORDER BY m.lab_id, m.host_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read mgmt segments: %w", err)
	}
	defer rows.Close()
	var out []MgmtSegment
	hubs := map[string]string{}
	for rows.Next() {
		var m MgmtSegment
		var vni sql.NullInt64
		var verified, host sql.NullTime
		if err := rows.Scan(&m.LabID, &m.Host, &m.Address, &m.Tag, &vni, &m.Status, &m.Error, &verified, &host); err != nil {
			return nil, fmt.Errorf("read mgmt segments: %w", err)
		}
		m.VNI, m.VerifiedAt = intPtr(vni), verifiedAt(m.Status, verified, host)
		if m.VNI == nil {
			hubs[m.LabID] = m.Host
		}
		out = append(out, m)
	}
	for i := range out {
		if out[i].VNI != nil {
			out[i].Hub = hubs[out[i].LabID]
		}
	}
	return out, rows.Err()
}

// NodeAddress is a node's address on its lab's management network.
type NodeAddress struct {
	Lab     string `json:"lab"`
	Node    string `json:"node"`
	Address string `json:"addr"`
}

// MgmtAllocation is what a round gave management networks: node addresses
// that changed, segments made or changed (pending again), and segments of
// hosts a lab left.
type MgmtAllocation struct {
	Addresses []NodeAddress
	Segments  []MgmtSegment
	Drop      []MgmtSegment
}

// Empty reports whether the allocation changes nothing.
func (a MgmtAllocation) Empty() bool {
	return len(a.Addresses)+len(a.Segments)+len(a.Drop) == 0
}

// SaveMgmt records a round's management allocations in one transaction of
// at most three statements. A VNI taken by a segment of another lab fails
// the whole batch.
func (s *Store) SaveMgmt(ctx context.Context, a MgmtAllocation) error {
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		labs := map[string]bool{}
		for _, n := range a.Addresses {
			labs[n.Lab] = true
		}
		for _, m := range slices.Concat(a.Segments, a.Drop) {
			labs[m.LabID] = true
		}
		if len(a.Addresses) > 0 {
			arg, err := jsonArg(a.Addresses)
			if err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, `UPDATE nodes SET mgmt_address = j.addr
				FROM `+s.jsonRows("lab text", "node text", "addr text")+` WHERE nodes.lab_id = j.lab AND nodes.name = j.node`, arg); err != nil {
				return fmt.Errorf("node addresses: %w", err)
			}
		}
		if len(a.Drop) > 0 {
			arg, err := jsonArg(a.Drop)
			if err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, `DELETE FROM mgmt_segments WHERE EXISTS (SELECT 1 FROM `+s.jsonRows("lab_id text", "host text")+`
				WHERE j.lab_id = mgmt_segments.lab_id AND j.host = mgmt_segments.host_id)`, arg); err != nil {
				return fmt.Errorf("drop mgmt segments: %w", err)
			}
		}
		if len(a.Segments) > 0 {
			arg, err := jsonArg(a.Segments)
			if err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, `INSERT INTO mgmt_segments (lab_id, host_id, address, vlan_tag, vni, status, error)
				SELECT j.lab_id, j.host, j.address, j.vlan_tag, j.vni, ?, ''
				FROM `+s.jsonRows("lab_id text", "host text", "address text", "vlan_tag integer", "vni integer")+` WHERE true
				ON CONFLICT (lab_id, host_id) DO UPDATE SET address = excluded.address, vlan_tag = excluded.vlan_tag,
				vni = excluded.vni, status = excluded.status, error = '', verified_at = NULL`, LinkPending, arg); err != nil {
				if isUnique(err) {
					return fmt.Errorf("mgmt segments: a VNI is taken: %w", ErrConflict)
				}
				return fmt.Errorf("mgmt segments: %w", err)
			}
		}
		return s.bumpLabs(ctx, tx, labs)
	})
	if err != nil {
		return fmt.Errorf("save mgmt allocations: %w", err)
	}
	return nil
}

// MgmtObservation is a management segment's state as its host answered
// it; Answered is false when the host did not answer.
type MgmtObservation struct {
	Lab      string `json:"lab"`
	Host     string `json:"host"`
	Status   string `json:"st"`
	Error    string `json:"err"`
	Answered bool   `json:"ans"`
}

// recordMgmt writes the segments whose state changed, in one statement,
// and adds their labs to labs.
func (s *Store) recordMgmt(ctx context.Context, tx *sql.Tx, labs map[string]bool, at time.Time, obs []MgmtObservation) error {
	if len(obs) == 0 {
		return nil
	}
	arg, err := jsonArg(obs)
	if err != nil {
		return err
	}
	if err := s.txLabs(ctx, tx, labs, `UPDATE mgmt_segments SET status = j.st, error = j.err,
		verified_at = CASE WHEN j.ans THEN `+s.ts()+` ELSE verified_at END
		FROM `+s.jsonRows("lab text", "host text", "st text", "err text", "ans boolean")+`
		WHERE mgmt_segments.lab_id = j.lab AND mgmt_segments.host_id = j.host RETURNING mgmt_segments.lab_id`, at, arg); err != nil {
		return fmt.Errorf("mgmt segments: %w", err)
	}
	return nil
}
