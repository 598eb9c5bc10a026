package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// NextGeneration hands out the next declaration generation; generations only
// grow, so an agent can refuse a stale declaration (DESIGN §6). With a
// leader (not ""), it hands one out only while leader holds the lease, in
// the same statement: every controller on the database shares the one
// counter, and a deposed leader gets ErrNotLeader.
func (s *Store) NextGeneration(ctx context.Context, leader string) (int64, error) {
	q, args := `UPDATE declaration_generation SET value = value + 1 WHERE id = 1`, []any{}
	if leader != "" {
		q += ` AND EXISTS (SELECT 1 FROM controller_lease WHERE id = 1 AND holder = ? AND expires_ms > ` + s.nowMS() + `)`
		args = append(args, leader)
	}
	var g int64
	err := s.queryRow(ctx, q+` RETURNING value`, args...).Scan(&g)
	if leader != "" && errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("next generation for %s: %w", leader, ErrNotLeader)
	}
	if err != nil {
		return 0, fmt.Errorf("next generation: %w", err)
	}
	return g, nil
}

// AdvanceGeneration moves the generation counter up to at least g, for a
// controller behind an agent (a restored database); it reports whether the
// counter moved.
func (s *Store) AdvanceGeneration(ctx context.Context, g int64) (bool, error) {
	r, err := s.exec(ctx, `UPDATE declaration_generation SET value = ? WHERE id = 1 AND value < ?`, g, g)
	if err != nil {
		return false, fmt.Errorf("advance generation to %d: %w", g, err)
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

// Desired is what a convergence round works from, read at once: every host,
// lab, node with its placement, link state with its tunnel, and interface
// mapping.
type Desired struct {
	// Revision is the desired revision read before the rest: what was
	// read is at least as new as it (see Revisions.Value). Whole and
	// LabRevisions are what moved it then, read in the same statement
	// (see Revisions).
	Revision     int64
	Whole        int64
	LabRevisions map[string]int64
	Hosts        []Host
	Labs         []Lab
	Nodes        []LabNode
	Links        []LinkState
	Mappings     []MappingObservation
	Files        map[string]map[string][]byte // shipped with each lab, by lab id
	Mgmt         []MgmtSegment
}

// Desired reads the desired state of every host in eight queries, whatever
// the number of labs, nodes and links.
func (s *Store) Desired(ctx context.Context) (Desired, error) {
	r, err := s.Revisions(ctx)
	if err != nil {
		return Desired{}, err
	}
	d := Desired{Revision: r.Value, Whole: r.Whole, LabRevisions: r.Labs}
	if d.Hosts, err = s.Hosts(ctx); err != nil {
		return Desired{}, err
	}
	if err := s.readLabs(ctx, &d, ""); err != nil {
		return Desired{}, err
	}
	s.sizes.nodes.Store(int64(len(d.Nodes)))
	s.sizes.links.Store(int64(len(d.Links)))
	return d, nil
}

// DesiredLabs reads the desired state of the labs given, hosts aside, in
// six queries whatever their number and size: what a reader that holds
// the rest reads once their revisions moved. It reads no revision: the
// caller read them before, so what it reads is at least as new.
func (s *Store) DesiredLabs(ctx context.Context, labs []string) (Desired, error) {
	rows := make([]map[string]string, len(labs))
	for i, l := range labs {
		rows[i] = map[string]string{"id": l}
	}
	arg, err := jsonArg(rows)
	if err != nil {
		return Desired{}, err
	}
	var d Desired
	if err := s.readLabs(ctx, &d, ` IN (SELECT j.id FROM `+s.jsonRows("id text")+`)`, arg); err != nil {
		return Desired{}, err
	}
	return d, nil
}

// readLabs reads labs, nodes, link states, files, management segments
// and interface mappings into d, in six statements: those of every lab
// when in is "", else those whose lab id is in in (a condition on a lab
// id column that takes args).
func (s *Store) readLabs(ctx context.Context, d *Desired, in string, args ...any) error {
	on := func(col string) string {
		if in == "" {
			return "1 = 1"
		}
		return col + in
	}
	nodes, links := 0, 0 // some labs: no telling how many
	if in == "" {
		nodes, links = int(s.sizes.nodes.Load()), int(s.sizes.links.Load())
	}
	var err error
	if d.Labs, err = s.labs(ctx, on("id"), args...); err != nil {
		return err
	}
	if d.Nodes, err = s.nodes(ctx, nodes, on("n.lab_id"), args...); err != nil {
		return err
	}
	if d.Links, err = s.linkStates(ctx, links, on("ls.lab_id"), args...); err != nil {
		return err
	}
	if d.Files, err = s.labFiles(ctx, on("id"), args...); err != nil {
		return err
	}
	if d.Mgmt, err = s.mgmtSegments(ctx, on("m.lab_id"), args...); err != nil {
		return err
	}
	rows, err := s.query(ctx, `SELECT m.lab_id, n.name, m.linux_interface, COALESCE(m.ovs_port, ''), COALESCE(m.vlan_tag, 0)
		FROM interface_mappings m JOIN nodes n ON n.id = m.node_id WHERE `+on("m.lab_id"), args...)
	if err != nil {
		return fmt.Errorf("read mappings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m MappingObservation
		if err := rows.Scan(&m.Lab, &m.Node, &m.Iface, &m.OVSPort, &m.Tag); err != nil {
			return fmt.Errorf("read mappings: %w", err)
		}
		d.Mappings = append(d.Mappings, m)
	}
	return rows.Err()
}

// Revisions is the desired revision with what moved it.
type Revisions struct {
	// Value is the desired revision: a counter that every write to what
	// Desired returns moves on in the write's own transaction, whichever
	// controller made it, so a reader that holds what it read at revision
	// r need not read it again while Value is r. Hosts are the exception:
	// registrations and heartbeats do not move it, so a reader reads them
	// anew each time.
	Value int64
	// Whole moves with every write that is not one lab's own: labs made
	// or deleted, hosts deleted, orphans cleaned up.
	Whole int64
	// Labs are each lab's revision, moved by every write to that lab's
	// rows and nothing else.
	Labs map[string]int64
}

// Revisions reads the desired revision, Whole and every lab's revision in
// one statement, so they agree: a reader that holds what it read with
// them need read again only the labs whose revisions moved, while Whole
// has not.
func (s *Store) Revisions(ctx context.Context) (Revisions, error) {
	rows, err := s.query(ctx, `SELECT '', value, whole FROM desired_revision WHERE id = 1
		UNION ALL SELECT id, revision, 0 FROM labs`)
	if err != nil {
		return Revisions{}, fmt.Errorf("read the desired revisions: %w", err)
	}
	defer rows.Close()
	r := Revisions{Labs: map[string]int64{}}
	for rows.Next() {
		var id string
		var v, whole int64
		if err := rows.Scan(&id, &v, &whole); err != nil {
			return Revisions{}, fmt.Errorf("read the desired revisions: %w", err)
		}
		if id == "" {
			r.Value, r.Whole = v, whole
			continue
		}
		r.Labs[id] = v
	}
	if err := rows.Err(); err != nil {
		return Revisions{}, fmt.Errorf("read the desired revisions: %w", err)
	}
	return r, nil
}

// bump moves the desired revision on, and Whole with it, inside a write's
// transaction (txDesired, which took the row first) that is not one lab's
// own.
func (s *Store) bump(ctx context.Context, tx *sql.Tx) error {
	if _, err := s.txExec(ctx, tx, `UPDATE desired_revision SET value = value + 1, whole = whole + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("move the desired revision on: %w", err)
	}
	return nil
}

// bumpLabs moves on the revisions of the labs a write changed, then the
// desired revision, inside a write's transaction (txDesired). A write that
// changed no row moves nothing.
func (s *Store) bumpLabs(ctx context.Context, tx *sql.Tx, labs map[string]bool) error {
	if len(labs) == 0 {
		return nil
	}
	rows := make([]map[string]string, 0, len(labs))
	for _, l := range slices.Sorted(maps.Keys(labs)) {
		rows = append(rows, map[string]string{"id": l})
	}
	arg, err := jsonArg(rows)
	if err != nil {
		return err
	}
	if _, err := s.txExec(ctx, tx, `UPDATE labs SET revision = revision + 1 WHERE id IN (SELECT j.id FROM `+s.jsonRows("id text")+`)`, arg); err != nil {
		return fmt.Errorf("move the labs' revisions on: %w", err)
	}
	if _, err := s.txExec(ctx, tx, `UPDATE desired_revision SET value = value + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("move the desired revision on: %w", err)
	}
	return nil
}

// txLabs runs a write that returns the lab of each row it wrote
// (RETURNING lab_id) and adds those labs to labs: the rows themselves
// say which labs' revisions move.
func (s *Store) txLabs(ctx context.Context, tx *sql.Tx, labs map[string]bool, q string, args ...any) error {
	rows, err := s.txQuery(ctx, tx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		labs[id] = true
	}
	return rows.Err()
}

// jsonRows returns a FROM item, aliased j, that turns one JSON array
// parameter of objects into rows of the given columns ("name type"), so a
// batch is one statement whatever its size.
func (s *Store) jsonRows(cols ...string) string {
	if s.postgres {
		return `json_to_recordset(CAST(? AS json)) AS j(` + strings.Join(cols, ", ") + `)`
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		name, _, _ := strings.Cut(c, " ")
		sel[i] = fmt.Sprintf("value->>'%s' AS %s", name, name)
	}
	return `(SELECT ` + strings.Join(sel, ", ") + ` FROM json_each(?)) AS j`
}

// ts is a timestamp parameter where the database cannot infer its type.
func (s *Store) ts() string {
	if s.postgres {
		return "CAST(? AS TIMESTAMP)"
	}
	return "?"
}

func jsonArg(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// Allocation is where a link's sides are and their tags, and its VNI (nil:
// unchanged). Both tags are one for a same-host link.
type Allocation struct {
	LinkStateID string `json:"id"`
	SourceHost  string `json:"sh"`
	TargetHost  string `json:"th"`
	SourceTag   int    `json:"st"`
	TargetTag   int    `json:"tt"`
	VNI         *int   `json:"nvni"`
	MTU         int    `json:"mtu"`
}

// TunnelRow is a cross-host link's tunnel as declared: its hosts' current
// data addresses and its port name.
type TunnelRow struct {
	LinkStateID string `json:"ls"`
	LabID       string `json:"lab"`
	VNI         int    `json:"vni"`
	AgentA      string `json:"a"`
	IPA         string `json:"ipa"`
	AgentB      string `json:"b"`
	IPB         string `json:"ipb"`
	PortName    string `json:"port"`
}

// SaveAllocations records, in one transaction of at most three statements,
// the links whose sides moved or got tags or a VNI (each such link is
// pending again), the tunnel rows that are new or changed, and drops the
// tunnel rows of the link states in dropTunnels. The unique constraint on
// VNIs still decides: a VNI taken by someone else fails the whole batch.
func (s *Store) SaveAllocations(ctx context.Context, allocs []Allocation, tunnels []TunnelRow, dropTunnels []string) error {
	t := now()
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		labs := map[string]bool{}
		if len(allocs) > 0 {
			arg, err := jsonArg(allocs)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `UPDATE link_states SET source_host_id = j.sh, target_host_id = j.th,
				source_vlan_tag = j.st, target_vlan_tag = j.tt, vlan_tag = CASE WHEN j.sh = j.th THEN j.st ELSE NULL END,
				is_cross_host = (j.sh <> j.th), vni = COALESCE(j.nvni, vni), link_mtu = j.mtu, actual_state = ?, error_message = '',
				partial_state_hosts = '', source_status = '', source_error = '', source_verified_at = NULL,
				target_status = '', target_error = '', target_verified_at = NULL, source_vxlan_attached = ?,
				target_vxlan_attached = ?, updated_at = ?
				FROM `+s.jsonRows("id text", "sh text", "th text", "st integer", "tt integer", "nvni integer", "mtu integer")+`
				WHERE link_states.id = j.id RETURNING link_states.lab_id`, LinkPending, false, false, t, arg); err != nil {
				if isUnique(err) {
					return fmt.Errorf("links: a VNI is taken: %w", ErrConflict)
				}
				return fmt.Errorf("links: %w", err)
			}
		}
		if len(tunnels) > 0 {
			rows := make([]struct {
				TunnelRow
				ID string `json:"id"`
			}, len(tunnels))
			for i, tr := range tunnels {
				rows[i].TunnelRow, rows[i].ID = tr, newID()
			}
			arg, err := jsonArg(rows)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `INSERT INTO vxlan_tunnels (id, lab_id, link_state_id, vni, agent_a_id, agent_a_ip,
				agent_b_id, agent_b_ip, status, port_name, created_at, updated_at)
				SELECT j.id, j.lab, j.ls, j.vni, j.a, j.ipa, j.b, j.ipb, 'active', j.port, `+s.ts()+`, `+s.ts()+`
				FROM `+s.jsonRows("id text", "lab text", "ls text", "vni integer", "a text", "ipa text", "b text", "ipb text", "port text")+`
				WHERE true
				ON CONFLICT (link_state_id) DO UPDATE SET vni = excluded.vni, agent_a_id = excluded.agent_a_id,
				agent_a_ip = excluded.agent_a_ip, agent_b_id = excluded.agent_b_id, agent_b_ip = excluded.agent_b_ip,
				status = 'active', port_name = excluded.port_name, updated_at = excluded.updated_at
				RETURNING lab_id`, t, t, arg); err != nil {
				return fmt.Errorf("tunnels: %w", err)
			}
		}
		if len(dropTunnels) > 0 {
			rows := make([]map[string]string, len(dropTunnels))
			for i, id := range dropTunnels {
				rows[i] = map[string]string{"id": id}
			}
			arg, err := jsonArg(rows)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `DELETE FROM vxlan_tunnels WHERE link_state_id IN (SELECT j.id FROM `+s.jsonRows("id text")+`)
				RETURNING lab_id`, arg); err != nil {
				return fmt.Errorf("drop tunnels: %w", err)
			}
		}
		return s.bumpLabs(ctx, tx, labs)
	})
	if err != nil {
		return fmt.Errorf("save allocations: %w", err)
	}
	return nil
}

// LinkObservation is a link's state derived from what its hosts answered.
// A side whose host did not answer in this round keeps its verified_at; its
// status and error are written back as they were.
type LinkObservation struct {
	LinkStateID    string `json:"id"`
	Actual         string `json:"act"`
	Error          string `json:"err"`
	PartialHosts   string `json:"part"` // comma-separated
	SourceStatus   string `json:"ss"`
	SourceError    string `json:"se"`
	SourceObserved bool   `json:"sobs"`
	SourceAttached bool   `json:"sa"`
	TargetStatus   string `json:"ts"`
	TargetError    string `json:"te"`
	TargetObserved bool   `json:"tobs"`
	TargetAttached bool   `json:"ta"`
}

// NodeObservation is what a node's host answered for it; Answered is false
// when the host did not answer (the node's verified_at stays).
type NodeObservation struct {
	Lab       string `json:"lab"`
	Node      string `json:"node"`
	Status    string `json:"st"`
	Error     string `json:"err"`
	RuntimeID string `json:"rid"` // "" keeps the one recorded
	Answered  bool   `json:"ans"`
	// Made says the host made the node in this round: ExecFailures replace
	// those recorded (none clears them). Otherwise they stay.
	Made         bool               `json:"made"`
	ExecFailures []wire.ExecFailure `json:"-"`
}

// MappingObservation is a node interface's port and tag as its host
// reported them.
type MappingObservation struct {
	Lab     string `json:"lab"`
	Node    string `json:"node"`
	Iface   string `json:"iface"`
	OVSPort string `json:"port"`
	Tag     int    `json:"tag"`
}

// Observations is what one convergence round learnt: the hosts that
// answered, and the links, nodes and mappings whose state changed.
type Observations struct {
	Answered []string // hosts
	Links    []LinkObservation
	Nodes    []NodeObservation
	Mappings []MappingObservation
	Mgmt     []MgmtObservation
}

// RecordObservations writes what a round learnt, observed at at, in one
// transaction of at most seven statements whatever its size. Objects whose
// state did not change are not written: their host's answer time says when
// they were verified. Only answer times (hosts, read anew each round) leave
// the desired revision where it was; the rest moves their labs'.
func (s *Store) RecordObservations(ctx context.Context, at time.Time, o Observations) error {
	at = at.UTC()
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		labs := map[string]bool{}
		if len(o.Answered) > 0 {
			rows := make([]map[string]string, len(o.Answered))
			for i, h := range o.Answered {
				rows[i] = map[string]string{"h": h}
			}
			arg, err := jsonArg(rows)
			if err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, `UPDATE hosts SET verified_at = `+s.ts()+` WHERE name IN (SELECT j.h FROM `+s.jsonRows("h text")+`)`, at, arg); err != nil {
				return fmt.Errorf("hosts: %w", err)
			}
		}
		if len(o.Links) > 0 {
			arg, err := jsonArg(o.Links)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `UPDATE link_states SET actual_state = j.act, error_message = j.err,
				partial_state_hosts = j.part, source_status = j.ss, source_error = j.se,
				source_verified_at = CASE WHEN j.sobs THEN `+s.ts()+` ELSE source_verified_at END,
				target_status = j.ts, target_error = j.te,
				target_verified_at = CASE WHEN j.tobs THEN `+s.ts()+` ELSE target_verified_at END,
				source_vxlan_attached = j.sa, target_vxlan_attached = j.ta, updated_at = `+s.ts()+`
				FROM `+s.jsonRows("id text", "act text", "err text", "part text", "ss text", "se text", "sobs boolean", "sa boolean",
				"ts text", "te text", "tobs boolean", "ta boolean")+`
				WHERE link_states.id = j.id RETURNING link_states.lab_id`, at, at, at, arg); err != nil {
				return fmt.Errorf("links: %w", err)
			}
		}
		if len(o.Nodes) > 0 {
			rows := make([]struct {
				NodeObservation
				Failures string `json:"ef"`
			}, len(o.Nodes))
			for i, n := range o.Nodes {
				rows[i].NodeObservation, rows[i].Failures = n, jsonFailures(n.ExecFailures)
			}
			arg, err := jsonArg(rows)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `UPDATE node_placements SET status = j.st, error = j.err,
				runtime_id = CASE WHEN j.rid = '' THEN runtime_id ELSE j.rid END,
				verified_at = CASE WHEN j.ans THEN `+s.ts()+` ELSE verified_at END,
				exec_failures = CASE WHEN j.made THEN j.ef ELSE exec_failures END
				FROM `+s.jsonRows("lab text", "node text", "st text", "err text", "rid text", "ans boolean", "made boolean", "ef text")+`
				WHERE node_placements.lab_id = j.lab AND node_placements.node_name = j.node RETURNING node_placements.lab_id`, at, arg); err != nil {
				return fmt.Errorf("nodes: %w", err)
			}
		}
		if err := s.recordMgmt(ctx, tx, labs, at, o.Mgmt); err != nil {
			return err
		}
		if len(o.Mappings) > 0 {
			rows := make([]struct {
				MappingObservation
				ID string `json:"id"`
			}, len(o.Mappings))
			for i, m := range o.Mappings {
				rows[i].MappingObservation, rows[i].ID = m, newID()
			}
			arg, err := jsonArg(rows)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `INSERT INTO interface_mappings (id, lab_id, node_id, ovs_port, ovs_bridge, vlan_tag,
				linux_interface, updated_at, last_verified_at)
				SELECT j.id, n.lab_id, n.id, j.port, '', j.tag, j.iface, `+s.ts()+`, `+s.ts()+`
				FROM `+s.jsonRows("id text", "lab text", "node text", "iface text", "port text", "tag integer")+`
				JOIN nodes n ON n.lab_id = j.lab AND n.name = j.node WHERE true
				ON CONFLICT (lab_id, node_id, linux_interface) DO UPDATE SET ovs_port = excluded.ovs_port,
				vlan_tag = excluded.vlan_tag, updated_at = excluded.updated_at, last_verified_at = excluded.last_verified_at
				RETURNING lab_id`, at, at, arg); err != nil {
				return fmt.Errorf("mappings: %w", err)
			}
		}
		return s.bumpLabs(ctx, tx, labs)
	})
	if err != nil {
		return fmt.Errorf("record observations: %w", err)
	}
	return nil
}

// Teardown is a host that answered a declaration without a lab and removed
// all it held of it.
type Teardown struct{ Host, Lab string }

// ConfirmTeardowns drops the placements of stopping labs on the hosts that
// confirmed their teardown, then marks stopped, with their links reset, the
// stopping labs left without placements, and returns those.
func (s *Store) ConfirmTeardowns(ctx context.Context, confirmed []Teardown) ([]string, error) {
	var done []string
	err := s.txDesired(ctx, func(tx *sql.Tx) error {
		labs := map[string]bool{}
		if len(confirmed) > 0 {
			rows := make([]map[string]string, len(confirmed))
			for i, c := range confirmed {
				rows[i] = map[string]string{"h": c.Host, "l": c.Lab}
			}
			arg, err := jsonArg(rows)
			if err != nil {
				return err
			}
			if err := s.txLabs(ctx, tx, labs, `DELETE FROM node_placements WHERE EXISTS (SELECT 1 FROM `+s.jsonRows("h text", "l text")+`
				WHERE j.h = node_placements.host_id AND j.l = node_placements.lab_id)
				AND lab_id IN (SELECT id FROM labs WHERE state = ?) RETURNING lab_id`, arg, LabStopping); err != nil {
				return err
			}
		}
		rows, err := s.txQuery(ctx, tx, `SELECT id FROM labs WHERE state = ? AND NOT EXISTS
			(SELECT 1 FROM node_placements p WHERE p.lab_id = labs.id)`, LabStopping)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			done = append(done, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, id := range done {
			if err := s.resetLinks(ctx, tx, id); err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, `UPDATE labs SET state = ?, state_error = '' WHERE id = ?`, LabStopped, id); err != nil {
				return err
			}
			labs[id] = true
		}
		return s.bumpLabs(ctx, tx, labs)
	})
	if err != nil {
		return nil, fmt.Errorf("confirm teardowns: %w", err)
	}
	return done, nil
}

// CleanupOrphans deletes tunnel rows without a link state and link states
// without a link definition: what a lab edit or an interrupted delete left.
// The agents drop the matching ports at the next declaration, since no one
// declares them any more.
func (s *Store) CleanupOrphans(ctx context.Context) (tunnels, links int64, err error) {
	err = s.txDesired(ctx, func(tx *sql.Tx) error {
		r, err := s.txExec(ctx, tx, `DELETE FROM vxlan_tunnels WHERE link_state_id IS NULL`)
		if err != nil {
			return fmt.Errorf("clean up tunnels: %w", err)
		}
		tunnels, _ = r.RowsAffected()
		r, err = s.txExec(ctx, tx, `DELETE FROM link_states WHERE link_definition_id IS NULL`)
		if err != nil {
			return fmt.Errorf("clean up link states: %w", err)
		}
		links, _ = r.RowsAffected()
		if tunnels+links == 0 {
			return nil
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return 0, 0, err
	}
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
