package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// Host is an agent the controller knows.
type Host struct {
	Name          string    `json:"name"`
	Address       string    `json:"address"` // the agent API's URL
	DataIP        string    `json:"data_ip"` // where tunnels start
	Capabilities  []string  `json:"capabilities"`
	Version       string    `json:"version"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	CreatedAt     time.Time `json:"created_at"`
	// UnderlayMTU is the MTU of the interface holding DataIP (0: not
	// reported); Underlay the agent's last checks of its peers.
	UnderlayMTU int                  `json:"underlay_mtu,omitempty"`
	Underlay    []wire.UnderlayCheck `json:"underlay,omitempty"`
	// Credential binds the host's name to its agent ("" for none); it is
	// never shown.
	Credential string `json:"-"`
}

// RegisterHost records an agent, or updates it when it registers again, and
// counts the registration as a heartbeat. A host's credential is set once:
// it returns the credential the host is bound to after the call, which is
// h.Credential unless another registration bound it first.
func (s *Store) RegisterHost(ctx context.Context, h Host) (string, error) {
	caps, err := json.Marshal(h.Capabilities)
	if err != nil {
		return "", err
	}
	t := now()
	var bound string
	err = s.queryRow(ctx, `INSERT INTO hosts (name, address, data_plane_address, capabilities, version, last_heartbeat, created_at, underlay_mtu, credential)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET address = excluded.address, data_plane_address = excluded.data_plane_address,
			capabilities = excluded.capabilities, version = excluded.version, last_heartbeat = excluded.last_heartbeat,
			underlay_mtu = excluded.underlay_mtu,
			credential = CASE WHEN hosts.credential = '' THEN excluded.credential ELSE hosts.credential END
		RETURNING credential`,
		h.Name, h.Address, h.DataIP, string(caps), h.Version, t, t, h.UnderlayMTU, h.Credential).Scan(&bound)
	if err != nil {
		return "", fmt.Errorf("register host %s: %w", h.Name, err)
	}
	return bound, nil
}

// Heartbeat records that an agent is alive, with the underlay it reports
// when it reports one (an agent of the first stage does not); ErrNotFound
// for an agent that never registered (it registers again).
func (s *Store) Heartbeat(ctx context.Context, name string, hb wire.HeartbeatRequest) error {
	var res sql.Result
	var err error
	if hb.UnderlayMTU == 0 && hb.Underlay == nil {
		res, err = s.exec(ctx, `UPDATE hosts SET last_heartbeat = ? WHERE name = ?`, now(), name)
	} else {
		checks, jerr := json.Marshal(hb.Underlay)
		if jerr != nil {
			return jerr
		}
		res, err = s.exec(ctx, `UPDATE hosts SET last_heartbeat = ?, underlay_mtu = ?, underlay = ? WHERE name = ?`,
			now(), hb.UnderlayMTU, string(checks), name)
	}
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("host %s: %w", name, ErrNotFound)
	}
	return nil
}

const hostColumns = `name, address, data_plane_address, capabilities, version, last_heartbeat, created_at, underlay_mtu, underlay, credential`

func scanHost(row interface{ Scan(...any) error }) (Host, error) {
	var h Host
	var caps, underlay string
	if err := row.Scan(&h.Name, &h.Address, &h.DataIP, &caps, &h.Version, &h.LastHeartbeat, &h.CreatedAt, &h.UnderlayMTU, &underlay, &h.Credential); err != nil {
		return Host{}, err
	}
	if err := json.Unmarshal([]byte(caps), &h.Capabilities); err != nil {
		return Host{}, fmt.Errorf("host %s capabilities: %w", h.Name, err)
	}
	if underlay != "[]" && underlay != "null" {
		if err := json.Unmarshal([]byte(underlay), &h.Underlay); err != nil {
			return Host{}, fmt.Errorf("host %s underlay: %w", h.Name, err)
		}
	}
	h.LastHeartbeat, h.CreatedAt = h.LastHeartbeat.UTC(), h.CreatedAt.UTC()
	return h, nil
}

// Hosts lists every host by name.
func (s *Store) Hosts(ctx context.Context) ([]Host, error) {
	rows, err := s.query(ctx, `SELECT `+hostColumns+` FROM hosts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var hosts []Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		hosts = append(hosts, h)
	}
	return hosts, rows.Err()
}

// Host returns one host.
func (s *Store) Host(ctx context.Context, name string) (Host, error) {
	h, err := scanHost(s.queryRow(ctx, `SELECT `+hostColumns+` FROM hosts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Host{}, fmt.Errorf("host %s: %w", name, ErrNotFound)
	}
	return h, err
}

// DeleteHost forgets a host, its name free for another agent to register.
// While labs have nodes placed on it, it is refused (ErrConflict, naming
// them) unless force: then those nodes are unplaced, their labs marked
// error until deployed again, and it returns the labs.
func (s *Store) DeleteHost(ctx context.Context, name string, force bool) ([]string, error) {
	var labs []string
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		rows, err := s.txQuery(ctx, tx, `SELECT DISTINCT lab_id FROM node_placements WHERE host_id = ? ORDER BY lab_id`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var lab string
			if err := rows.Scan(&lab); err != nil {
				rows.Close()
				return err
			}
			labs = append(labs, lab)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(labs) > 0 && !force {
			return fmt.Errorf("host %s: lab %s has nodes on %s (--force unplaces them): %w", name, strings.Join(labs, ", lab "), name, ErrConflict)
		}
		why := fmt.Sprintf("host %s was removed with nodes of this lab on it: deploy the lab to place them again", name)
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE labs SET state = ?, state_error = ? WHERE id IN (SELECT lab_id FROM node_placements WHERE host_id = ?)`, []any{LabError, why, name}},
			{`DELETE FROM node_placements WHERE host_id = ?`, []any{name}},
			{`DELETE FROM mgmt_segments WHERE host_id = ?`, []any{name}},
			{`DELETE FROM hosts WHERE name = ?`, []any{name}},
		} {
			res, err := s.txExec(ctx, tx, q.sql, q.args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 && strings.HasPrefix(q.sql, "DELETE FROM hosts") {
				return fmt.Errorf("host %s: %w", name, ErrNotFound)
			}
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("remove host %s: %w", name, err)
	}
	return labs, nil
}

// Unbind clears a host's credential: the next agent that registers its
// name binds it (a host reinstalled, its agent's state gone). Its labs and
// placements stay.
func (s *Store) Unbind(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `UPDATE hosts SET credential = '' WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("unbind host %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("host %s: %w", name, ErrNotFound)
	}
	return nil
}
