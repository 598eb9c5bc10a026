package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// The PostgreSQL server the package's tests share; each test makes its own
// database on it.
var (
	pgOnce sync.Once
	pg     *testbed.Postgres
	pgErr  error
	pgBed  *testbed.Bed
	dbSeq  int
	dbMu   sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgBed != nil {
		if err := pgBed.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close postgres bed:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// backends returns, for each database, a function that makes an empty one
// and returns its DSN.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "netloom.db") },
		"postgres": func(t *testing.T) string {
			if testing.Short() {
				t.Skip("needs a PostgreSQL server run by root: skipped with -short")
			}
			pgOnce.Do(func() {
				ctx := context.Background()
				pgBed, pgErr = testbed.New(ctx, testbed.Config{Name: "store-postgres"})
				if pgErr == nil {
					pg, pgErr = pgBed.StartPostgres(ctx)
				}
			})
			if pgErr != nil {
				t.Fatalf("postgres: %v", pgErr)
			}
			dbMu.Lock()
			dbSeq++
			name := fmt.Sprintf("t%d", dbSeq)
			dbMu.Unlock()
			dsn, err := pg.CreateDatabase(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			return dsn
		},
	}
}

func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var demo = topology.Lab{
	Name: "demo",
	Nodes: []topology.Node{
		{Name: "r1", Kind: "linux", Host: "hostA"}, {Name: "r2", Kind: "linux", Host: "hostA"}, {Name: "r3", Kind: "linux"},
	},
	Links: []topology.Link{
		{A: topology.Endpoint{Node: "r2", Iface: "eth1"}, B: topology.Endpoint{Node: "r1", Iface: "eth1"}},
		{A: topology.Endpoint{Node: "r2", Iface: "eth2"}, B: topology.Endpoint{Node: "r3", Iface: "eth1"}},
	},
}

func TestStore(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, mk(t))
			ctx := t.Context()
			if v, err := s.Version(ctx); err != nil || v != latestVersion {
				t.Fatalf("version %d, %v; want %d", v, err, latestVersion)
			}

			// Hosts.
			if _, err := s.RegisterHost(ctx, Host{Name: "hostA", Address: "http://10.77.0.1:7401", DataIP: "10.77.0.1", Capabilities: []string{"ovs"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RegisterHost(ctx, Host{Name: "hostA", Address: "http://10.77.0.1:7402", DataIP: "10.77.0.1", Version: "v2"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Heartbeat(ctx, "hostZ", wire.HeartbeatRequest{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("heartbeat of an unknown host: %v, want ErrNotFound", err)
			}
			h, err := s.Host(ctx, "hostA")
			if err != nil || h.Address != "http://10.77.0.1:7402" || h.Version != "v2" || time.Since(h.LastHeartbeat) > time.Minute {
				t.Errorf("host %+v, %v", h, err)
			}

			// Labs.
			lab, err := s.CreateLab(ctx, demo)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateLab(ctx, demo); !errors.Is(err, ErrConflict) {
				t.Errorf("second lab named demo: %v, want ErrConflict", err)
			}
			v, err := s.LabView(ctx, "demo")
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Nodes) != 3 || len(v.Links) != 2 || v.Links[0].Name != "r1:eth1-r2:eth1" || v.Links[0].SourceNode != "r1" {
				t.Fatalf("view %+v", v)
			}
			if err := s.SetPlacements(ctx, lab.ID, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostB"}); err != nil {
				t.Fatal(err)
			}
			load, err := s.NodeLoad(ctx)
			if err != nil || load["hostA"] != 2 || load["hostB"] != 1 {
				t.Errorf("load %v, %v", load, err)
			}

			// Allocations: tags and hosts per side, a VNI, a tunnel row.
			same, cross := v.Links[0], v.Links[1]
			vni := int(ident.VNI(lab.ID, cross.Name))
			if err := s.SaveAllocations(ctx, []Allocation{
				{LinkStateID: same.ID, SourceHost: "hostA", TargetHost: "hostA", SourceTag: 2050, TargetTag: 2050},
				{LinkStateID: cross.ID, SourceHost: "hostA", TargetHost: "hostB", SourceTag: 2051, TargetTag: 2070, VNI: &vni},
			}, []TunnelRow{{LinkStateID: cross.ID, LabID: lab.ID, VNI: vni, AgentA: "hostA", IPA: "10.77.0.1", AgentB: "hostB",
				IPB: "10.77.0.2", PortName: ident.PortName(lab.ID, cross.Name)}}, nil); err != nil {
				t.Fatal(err)
			}
			d, err := s.Desired(ctx)
			if err != nil || len(d.Hosts) != 1 || len(d.Labs) != 1 || len(d.Nodes) != 3 || len(d.Links) != 2 {
				t.Fatalf("desired %+v, %v", d, err)
			}
			same, cross = d.Links[0], d.Links[1]
			if same.ActualState != LinkPending || *same.SourceTag != 2050 || *same.TargetTag != 2050 || *same.VLANTag != 2050 || same.CrossHost {
				t.Errorf("same-host link %+v", same)
			}
			tun := cross.Tunnel
			if !cross.CrossHost || *cross.SourceTag != 2051 || *cross.TargetTag != 2070 || *cross.VNI != vni || cross.VLANTag != nil || tun == nil ||
				tun.PortName != ident.PortName(lab.ID, cross.Name) || tun.IPA != "10.77.0.1" || tun.IPB != "10.77.0.2" || tun.VNI != vni {
				t.Errorf("cross-host link %+v tunnel %+v", cross, tun)
			}
			// A VNI another link holds is refused (W-26).
			if err := s.SaveAllocations(ctx, []Allocation{{LinkStateID: same.ID, SourceHost: "hostA", TargetHost: "hostA",
				SourceTag: 2050, TargetTag: 2050, VNI: &vni}}, nil, nil); !errors.Is(err, ErrConflict) {
				t.Errorf("a taken VNI: %v, want ErrConflict", err)
			}
			// A refreshed address, then observations.
			if err := s.SaveAllocations(ctx, nil, []TunnelRow{{LinkStateID: cross.ID, LabID: lab.ID, VNI: vni, AgentA: "hostA",
				IPA: "10.77.0.9", AgentB: "hostB", IPB: "10.77.0.2", PortName: tun.PortName}}, nil); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
			failure := wire.ExecFailure{Command: "ip addr add 10.0.0.1/33 dev eth1", ExitCode: 1, Stderr: "Error: any valid prefix is expected.\n"}
			if err := s.RecordObservations(ctx, at, Observations{
				Links: []LinkObservation{
					{LinkStateID: same.ID, Actual: LinkUp, SourceStatus: LinkUp, SourceObserved: true, TargetStatus: LinkUp, TargetObserved: true},
					{LinkStateID: cross.ID, Actual: LinkError, Error: PartialStatePrefix + "hostB: no port", PartialHosts: "hostA",
						SourceStatus: LinkUp, SourceObserved: true, SourceAttached: true, TargetStatus: LinkError, TargetError: "hostB: no port"},
				},
				Answered: []string{"hostA"},
				Nodes: []NodeObservation{{Lab: lab.ID, Node: "r1", Status: LinkUp, RuntimeID: "nl-demo-r1", Answered: true,
					Made: true, ExecFailures: []wire.ExecFailure{failure}}},
				Mappings: []MappingObservation{{Lab: lab.ID, Node: "r1", Iface: "eth1", OVSPort: "nlp1", Tag: 2050}},
			}); err != nil {
				t.Fatal(err)
			}
			v, _ = s.LabView(ctx, lab.ID)
			same, cross = v.Links[0], v.Links[1]
			if same.ActualState != LinkUp || same.VerifiedAt == nil || !same.VerifiedAt.Equal(at) {
				t.Errorf("observed same-host link %+v", same)
			}
			if cross.ActualState != LinkError || !strings.HasPrefix(cross.Error, PartialStatePrefix) || strings.Join(cross.PartialHosts, ",") != "hostA" ||
				cross.TargetVerifiedAt != nil || cross.SourceVerifiedAt == nil || cross.VerifiedAt != nil || !cross.SourceAttached || cross.TargetAttached ||
				cross.Tunnel.IPA != "10.77.0.9" {
				t.Errorf("observed cross-host link %+v", cross)
			}
			if n := v.Nodes[0]; n.Status != LinkUp || n.RuntimeID != "nl-demo-r1" || n.VerifiedAt == nil || v.Nodes[1].Status != LinkPending ||
				!slices.Equal(n.ExecFailures, []wire.ExecFailure{failure}) {
				t.Errorf("observed nodes %+v", v.Nodes)
			}
			// A node observed but not made keeps its exec failures.
			if err := s.RecordObservations(ctx, at, Observations{Nodes: []NodeObservation{{Lab: lab.ID, Node: "r1", Status: LinkError, Error: "x", Answered: true}}}); err != nil {
				t.Fatal(err)
			}
			if v, _ = s.LabView(ctx, lab.ID); len(v.Nodes[0].ExecFailures) != 1 || v.Nodes[0].Status != LinkError {
				t.Errorf("node observed, not made: %+v", v.Nodes[0])
			}
			if err := s.RecordObservations(ctx, at, Observations{Nodes: []NodeObservation{{Lab: lab.ID, Node: "r1", Status: LinkUp, RuntimeID: "nl-demo-r1", Answered: true}}}); err != nil {
				t.Fatal(err)
			}
			if len(v.Maps) != 1 || v.Maps[0].OVSPort != "nlp1" || v.Maps[0].LastVerifiedAt == nil {
				t.Errorf("mappings %+v", v.Maps)
			}
			// A later answer of hostA verifies what it holds without rewriting it.
			later := at.Add(time.Minute)
			if err := s.RecordObservations(ctx, later, Observations{Answered: []string{"hostA"}}); err != nil {
				t.Fatal(err)
			}
			v, _ = s.LabView(ctx, lab.ID)
			if !v.Links[0].VerifiedAt.Equal(later) || !v.Nodes[0].VerifiedAt.Equal(later) || !v.Maps[0].LastVerifiedAt.Equal(later) ||
				v.Links[1].TargetVerifiedAt != nil || v.Nodes[1].VerifiedAt != nil {
				t.Errorf("after hostA answered again: links %+v nodes %+v maps %+v", v.Links, v.Nodes, v.Maps)
			}
			if p := v.Progress; p != (wire.LabProgress{NodesUp: 1, Nodes: 3, LinksUp: 1, Links: 2}) {
				t.Errorf("progress %+v", p)
			}

			// Generations: catch-up only moves forward.
			g, _ := s.NextGeneration(ctx, "")
			if moved, err := s.AdvanceGeneration(ctx, g+10); err != nil || !moved {
				t.Errorf("advance: %v, %v", moved, err)
			}
			if moved, _ := s.AdvanceGeneration(ctx, g); moved {
				t.Error("the generation went back")
			}
			if next, _ := s.NextGeneration(ctx, ""); next != g+11 {
				t.Errorf("next generation %d, want %d", next, g+11)
			}

			// Teardown: stopped once every host that held the lab confirmed.
			if err := s.SetLabState(ctx, lab.ID, LabStopping, ""); err != nil {
				t.Fatal(err)
			}
			if done, err := s.ConfirmTeardowns(ctx, []Teardown{{"hostA", lab.ID}, {"hostB", "other-lab"}}); err != nil || len(done) != 0 {
				t.Errorf("after hostA confirmed: %v, %v; want the lab still stopping (hostB holds r3)", done, err)
			}
			if done, err := s.ConfirmTeardowns(ctx, []Teardown{{"hostB", lab.ID}}); err != nil || len(done) != 1 {
				t.Errorf("after hostB confirmed: %v, %v; want the lab stopped", done, err)
			}
			v, _ = s.LabView(ctx, lab.ID)
			if l := v.Links[1]; v.State != LabStopped || l.ActualState != LinkDown || l.Tunnel != nil || l.SourceTag != nil || l.VNI == nil || len(v.Maps) != 0 || v.Nodes[0].PlacedOn != "" {
				t.Errorf("after teardown %+v", v)
			}
			if err := s.DeleteLab(ctx, lab.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.LabView(ctx, lab.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleted lab: %v", err)
			}
			var n int
			if err := s.db.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM link_states WHERE lab_id = ?`), lab.ID).Scan(&n); err != nil || n != 0 {
				t.Errorf("link states of a deleted lab: %d, %v", n, err)
			}
		})
	}
}

// TestMigrationUpgrade fills a database at each version before a migration
// and checks what the migration does with the rows.
func TestMigrationUpgrade(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := open(mk(t), quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.migrateTo(ctx, 1); err != nil {
				t.Fatal(err)
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.db.ExecContext(ctx, s.rebind(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			exec(`INSERT INTO labs (id, name, created_at) VALUES ('lab-1', 'one', ?)`, ts)
			exec(`INSERT INTO nodes (id, lab_id, name) VALUES ('n1', 'lab-1', 'R1')`)
			exec(`INSERT INTO link_states (id, lab_id, link_name, source_node, source_interface, target_node, target_interface, updated_at)
				VALUES ('ls1', 'lab-1', 'R1:eth1-R2:eth1', 'R1', 'eth1', 'R2', 'eth1', ?)`, ts)
			for _, row := range []struct {
				id string
				ls any
			}{{"vt1", "ls1"}, {"vt2", nil}} {
				exec(`INSERT INTO vxlan_tunnels (id, lab_id, link_state_id, vni, agent_a_id, agent_a_ip, agent_b_id, agent_b_ip, created_at, updated_at)
					VALUES (?, 'lab-1', ?, 4413936, 'a', '10.0.0.1', 'b', '10.0.0.2', ?, ?)`, row.id, row.ls, ts, ts)
			}

			if err := s.migrateTo(ctx, 2); err != nil {
				t.Fatal(err)
			}
			ports := map[string]sql.NullString{}
			rows, err := s.db.QueryContext(ctx, `SELECT id, port_name FROM vxlan_tunnels`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				var p sql.NullString
				if err := rows.Scan(&id, &p); err != nil {
					t.Fatal(err)
				}
				ports[id] = p
			}
			rows.Close()
			if ports["vt1"].String != "vxlan-83debe08" || ports["vt2"].Valid {
				t.Errorf("after migration 2: port names %+v; want vxlan-83debe08 back-filled and NULL without a link state", ports)
			}

			exec(`INSERT INTO interface_mappings (id, lab_id, node_id, ovs_port, linux_interface, updated_at) VALUES ('m1', 'lab-1', 'n1', 'nlp1', 'eth1', ?)`, ts)
			if err := s.migrateTo(ctx, 3); err != nil {
				t.Fatal(err)
			}
			var verified sql.NullTime
			var port string
			if err := s.db.QueryRowContext(ctx, `SELECT ovs_port, last_verified_at FROM interface_mappings WHERE id = 'm1'`).Scan(&port, &verified); err != nil {
				t.Fatal(err)
			}
			if port != "nlp1" || verified.Valid {
				t.Errorf("after migration 3: port %q verified %v; want the row kept and never verified", port, verified)
			}
			if err := s.migrateTo(ctx, 4); err != nil {
				t.Fatal(err)
			}
			var cmds string
			if err := s.db.QueryRowContext(ctx, `SELECT exec FROM nodes WHERE id = 'n1'`).Scan(&cmds); err != nil || cmds != "[]" {
				t.Errorf("after migration 4: node exec %q, %v; want [] for an existing node", cmds, err)
			}
			exec(`INSERT INTO node_placements (id, lab_id, node_name, host_id, status) VALUES ('p1', 'lab-1', 'R1', 'hostA', 'deployed')`)
			exec(`INSERT INTO hosts (name, address, data_plane_address, last_heartbeat, created_at) VALUES ('hostA', 'http://a', '10.0.0.1', ?, ?)`, ts, ts)
			exec(`UPDATE link_states SET actual_state = 'up' WHERE id = 'ls1'`)
			if err := s.migrateTo(ctx, 5); err != nil {
				t.Fatal(err)
			}
			var actual, srcStatus string
			var srcVerified, nodeVerified sql.NullTime
			if err := s.db.QueryRowContext(ctx, `SELECT actual_state, source_status, source_verified_at FROM link_states WHERE id = 'ls1'`).Scan(&actual, &srcStatus, &srcVerified); err != nil {
				t.Fatal(err)
			}
			if err := s.db.QueryRowContext(ctx, `SELECT verified_at FROM node_placements WHERE id = 'p1'`).Scan(&nodeVerified); err != nil {
				t.Fatal(err)
			}
			var hostVerified sql.NullTime
			if err := s.db.QueryRowContext(ctx, `SELECT verified_at FROM hosts WHERE name = 'hostA'`).Scan(&hostVerified); err != nil {
				t.Fatal(err)
			}
			if actual != "up" || srcStatus != "" || srcVerified.Valid || nodeVerified.Valid || hostVerified.Valid {
				t.Errorf("after migration 5: link %q side %q verified %v, node verified %v; want rows kept and never observed", actual, srcStatus, srcVerified, nodeVerified)
			}
			if err := s.migrateTo(ctx, 6); err != nil {
				t.Fatal(err)
			}
			var settings, files string
			if err := s.db.QueryRowContext(ctx, `SELECT n.settings, l.files FROM nodes n JOIN labs l ON l.id = n.lab_id WHERE n.id = 'n1'`).Scan(&settings, &files); err != nil || settings != "{}" || files != "{}" {
				t.Errorf("after migration 6: node settings %q, lab files %q, %v; want {} for existing rows", settings, files, err)
			}
			if err := s.migrateTo(ctx, 7); err != nil {
				t.Fatal(err)
			}
			var mtu, ulMTU int
			var linkMTU sql.NullInt64
			if err := s.db.QueryRowContext(ctx, `SELECT ls.mtu, ls.link_mtu, h.underlay_mtu FROM link_states ls, hosts h WHERE ls.id = 'ls1' AND h.name = 'hostA'`).Scan(&mtu, &linkMTU, &ulMTU); err != nil || mtu != 0 || linkMTU.Valid || ulMTU != 0 {
				t.Errorf("after migration 7: link mtu %d/%v, underlay %d, %v; want the defaults, not yet allocated", mtu, linkMTU, ulMTU, err)
			}
			if err := s.migrateTo(ctx, 8); err != nil {
				t.Fatal(err)
			}
			var failures string
			if err := s.db.QueryRowContext(ctx, `SELECT exec_failures FROM node_placements WHERE id = 'p1'`).Scan(&failures); err != nil || failures != "[]" {
				t.Errorf("after migration 8: exec failures %q, %v; want [] for an existing placement", failures, err)
			}
			if err := s.migrateTo(ctx, 9); err != nil {
				t.Fatal(err)
			}
			var subnet, addr string
			if err := s.db.QueryRowContext(ctx, `SELECT l.mgmt_subnet, n.mgmt_address FROM nodes n JOIN labs l ON l.id = n.lab_id WHERE n.id = 'n1'`).Scan(&subnet, &addr); err != nil || subnet != "" || addr != "" {
				t.Errorf("after migration 9: mgmt subnet %q, address %q, %v; want none for an existing lab until it is applied again", subnet, addr, err)
			}
			if err := s.migrateTo(ctx, 10); err != nil {
				t.Fatal(err)
			}
			if h, err := s.Host(ctx, "hostA"); err != nil || h.Credential != "" {
				t.Errorf("after migration 10: host %+v, %v; want an existing host unbound", h, err)
			}
			if err := s.migrateTo(ctx, 11); err != nil {
				t.Fatal(err)
			}
			if _, err := s.NextGeneration(ctx, "a"); !errors.Is(err, ErrNotLeader) {
				t.Errorf("after migration 11: a generation for a leader, %v; want ErrNotLeader until one takes the lease", err)
			}
			if err := s.migrateTo(ctx, 12); err != nil {
				t.Fatal(err)
			}
			var r int64
			if err := s.queryRow(ctx, `SELECT value FROM desired_revision WHERE id = 1`).Scan(&r); err != nil || r != 0 {
				t.Errorf("after migration 12: desired revision %d, %v; want 0", r, err)
			}
			if err := s.migrateTo(ctx, 13); err != nil {
				t.Fatal(err)
			}
			if r, err := s.Revisions(ctx); err != nil || r.Whole != 0 || len(r.Labs) == 0 || slices.Max(slices.Collect(maps.Values(r.Labs))) != 0 {
				t.Errorf("after migration 13: revisions %+v, %v; want every lab's and whole at 0", r, err)
			}
			if v, _ := s.Version(ctx); v != latestVersion {
				t.Errorf("version %d, want %d", v, latestVersion)
			}
		})
	}
}

// TestNodeSettingsAndFiles: a container node's settings and the files
// shipped with its lab are kept, and replaced by an edit.
func TestNodeSettingsAndFiles(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, mk(t))
			ctx := t.Context()
			settings := wire.NodeSettings{StartupConfig: "r1/frr.conf", FRRDaemons: []string{"ospfd"},
				Container: &wire.Container{Env: map[string]string{"A": "1"}, Binds: []string{"x:/x"}, CPU: 0.5}}
			lab := topology.Lab{Name: "f", Nodes: []topology.Node{{Name: "r1", Kind: "frr", Image: "frr:1", NodeSettings: settings}},
				Files: map[string][]byte{"r1/frr.conf": []byte("hostname r1\n"), "x": {0, 1, 2}}}
			if _, err := s.CreateLab(ctx, lab); err != nil {
				t.Fatal(err)
			}
			v, err := s.LabView(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(settings, v.Nodes[0].NodeSettings); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			files, err := s.LabFiles(ctx)
			if err != nil || !reflect.DeepEqual(files["f"], lab.Files) {
				t.Errorf("files %v, %v; want %v", files, err, lab.Files)
			}
			next := lab.Nodes[0]
			next.Container = nil
			if err := s.UpdateLab(ctx, "f", LabChange{ChangeNodes: []topology.Node{next}}); err != nil {
				t.Fatal(err)
			}
			if v, err = s.LabView(ctx, "f"); err != nil || v.Nodes[0].Container != nil || v.Nodes[0].StartupConfig != "r1/frr.conf" {
				t.Errorf("after the edit: %+v, %v", v.Nodes[0], err)
			}
			if files, err = s.LabFiles(ctx); err != nil || len(files) != 0 {
				t.Errorf("after the edit, files %v, %v; want none", files, err)
			}
		})
	}
}

// TestStartupIntegrity: a new database file is its owner's alone; an empty
// file is refused rather than taken for a new database; a corrupt one is
// refused at start, with what SQLite found.
func TestStartupIntegrity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "n.db")
	s := openStore(t, "sqlite://"+path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new database file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	lab := demo
	for i := range 200 { // pages enough that one in the middle holds rows
		lab.Name = fmt.Sprintf("lab%03d", i)
		if _, err := s.CreateLab(t.Context(), lab); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), "sqlite://"+empty, quiet()); err == nil || !strings.Contains(err.Error(), "an empty file, not a database") {
		t.Errorf("an empty file: %v", err)
	}

	data, err := os.ReadFile(path)
	if err != nil || len(data) < 8*4096 {
		t.Fatalf("database of %d bytes: %v", len(data), err)
	}
	for i := 4 * 4096; i < 6*4096; i++ { // two pages of garbage past the schema
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := Open(t.Context(), "sqlite://"+path, quiet()); err == nil || !strings.Contains(err.Error(), "integrity check failed") {
		if st != nil {
			st.Close()
		}
		t.Errorf("a corrupt database: %v", err)
	}
}

func TestSortRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
	}{
		{"empty", nil},
		{"one", []string{"a"}},
		{"sorted", []string{"a", "b", "c"}},
		{"reversed", []string{"e", "d", "c", "b", "a"}},
		{"cycles", []string{"c", "a", "b", "f", "d", "e", "g"}},
		{"equal keys", []string{"b", "a", "b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := slices.Clone(tt.in)
			sortRows(got, func(a, b *string) int { return strings.Compare(*a, *b) })
			want := slices.Sorted(slices.Values(tt.in))
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sortRows(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestDesiredOrder checks that Desired returns nodes by lab and name and
// links by name, whatever order the rows were stored in: the database
// returns them unsorted.
func TestDesiredOrder(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, mk(t))
			ctx := t.Context()
			for _, lab := range []string{"zeta", "alpha"} {
				l := topology.Lab{Name: lab}
				for _, n := range []string{"n2", "n10", "n1"} {
					l.Nodes = append(l.Nodes, topology.Node{Name: n, Kind: "linux"})
				}
				l.Links = []topology.Link{
					{A: topology.Endpoint{Node: "n2", Iface: "eth1"}, B: topology.Endpoint{Node: "n10", Iface: "eth1"}},
					{A: topology.Endpoint{Node: "n1", Iface: "eth1"}, B: topology.Endpoint{Node: "n2", Iface: "eth2"}},
				}
				if _, err := s.CreateLab(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 { // the second read is sized by the first
				d, err := s.Desired(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var nodes []string
				for _, n := range d.Nodes {
					nodes = append(nodes, n.Lab+"/"+n.Name)
				}
				want := []string{"alpha/n1", "alpha/n10", "alpha/n2", "zeta/n1", "zeta/n10", "zeta/n2"}
				if diff := cmp.Diff(want, nodes); diff != "" {
					t.Errorf("nodes (-want +got):\n%s", diff)
				}
				// By name only: two labs' links of one name come in either order.
				var links []string
				for _, ls := range d.Links {
					links = append(links, ls.Name)
				}
				want = []string{"n10:eth1-n2:eth1", "n10:eth1-n2:eth1", "n1:eth1-n2:eth2", "n1:eth1-n2:eth2"}
				if diff := cmp.Diff(want, links); diff != "" {
					t.Errorf("links (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestRevision: every write to what Desired returns moves the desired
// revision on, and what leaves it as it was (answer times, hosts, a
// cleanup or a teardown with nothing to do) does not. A write to one
// lab's rows moves that lab's revision alone, and DesiredLabs reads it
// back; any other moves Whole.
func TestRevision(t *testing.T) {
	const (
		none  = ""
		lab   = "lab"
		whole = "whole"
	)
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := openStore(t, mk(t))
			other := topology.Lab{Name: "other", Nodes: []topology.Node{{Name: "x", Kind: "linux"}}}
			if _, err := s.CreateLab(ctx, other); err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				name  string
				write func() error
				moves string // none, lab (demo's alone) or whole
			}{
				{"create lab", func() error { _, err := s.CreateLab(ctx, demo); return err }, whole},
				{"register host", func() error {
					_, err := s.RegisterHost(ctx, Host{Name: "hostA", Address: "http://a", DataIP: "10.0.0.1"})
					return err
				}, none},
				{"place", func() error {
					return s.SetPlacements(ctx, "demo", map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostA"})
				}, lab},
				{"lab state", func() error { return s.SetLabState(ctx, "demo", LabRunning, "") }, lab},
				{"answer times", func() error {
					return s.RecordObservations(ctx, time.Now(), Observations{Answered: []string{"hostA"}})
				}, none},
				{"node observed", func() error {
					return s.RecordObservations(ctx, time.Now(), Observations{Answered: []string{"hostA"},
						Nodes: []NodeObservation{{Lab: "demo", Node: "r1", Status: LinkUp, Answered: true}}})
				}, lab},
				{"link allocated", func() error {
					d, err := s.DesiredLabs(ctx, []string{"demo"})
					if err != nil {
						return err
					}
					return s.SaveAllocations(ctx, []Allocation{{LinkStateID: d.Links[0].ID, SourceHost: "hostA", TargetHost: "hostA",
						SourceTag: 7, TargetTag: 7, MTU: 1500}}, nil, nil)
				}, lab},
				{"link observed", func() error {
					d, err := s.DesiredLabs(ctx, []string{"demo"})
					if err != nil {
						return err
					}
					return s.RecordObservations(ctx, time.Now(), Observations{Links: []LinkObservation{{LinkStateID: d.Links[0].ID, Actual: LinkUp}}})
				}, lab},
				{"management allocated", func() error {
					return s.SaveMgmt(ctx, MgmtAllocation{Addresses: []NodeAddress{{Lab: "demo", Node: "r1", Address: "10.9.0.2"}}})
				}, lab},
				{"nothing to clean up", func() error { _, _, err := s.CleanupOrphans(ctx); return err }, none},
				{"no teardown", func() error { _, err := s.ConfirmTeardowns(ctx, nil); return err }, none},
				{"lab edited", func() error {
					return s.UpdateLab(ctx, "demo", LabChange{ChangeNodes: []topology.Node{{Name: "r3", Kind: "linux", Exec: []string{"true"}}}})
				}, lab},
				{"host removed", func() error { _, err := s.DeleteHost(ctx, "hostA", true); return err }, whole},
				{"lab deleted", func() error { return s.DeleteLab(ctx, "demo") }, whole},
			}
			for _, st := range steps {
				before, err := s.Revisions(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.write(); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				d, err := s.Desired(ctx)
				if err != nil {
					t.Fatal(err)
				}
				moved := none
				switch {
				case d.Whole != before.Whole:
					moved = whole
				case d.Revision != before.Value && d.LabRevisions["demo"] != before.Labs["demo"]:
					moved = lab
				case d.Revision != before.Value:
					moved = "the revision alone"
				}
				if moved != st.moves {
					t.Errorf("%s: moved %q (revisions %+v → %d, %d, %v); want %q", st.name, moved, before, d.Revision, d.Whole, d.LabRevisions, st.moves)
				}
				if d.LabRevisions["other"] != before.Labs["other"] {
					t.Errorf("%s: moved the other lab's revision", st.name)
				}
				if st.moves != lab {
					continue
				}
				// What the write changed reads back with the lab alone.
				part, err := s.DesiredLabs(ctx, []string{"demo"})
				if err != nil {
					t.Fatal(err)
				}
				only := func(ls []LabNode) []LabNode {
					return slices.DeleteFunc(slices.Clone(ls), func(n LabNode) bool { return n.Lab != "demo" })
				}
				if diff := cmp.Diff(only(d.Nodes), part.Nodes); diff != "" || len(part.Labs) != 1 || part.Labs[0] != d.Labs[0] {
					t.Errorf("%s: DesiredLabs read labs %+v, nodes (-full +lab):\n%s", st.name, part.Labs, diff)
				}
				if diff := cmp.Diff(d.Links, part.Links); diff != "" {
					t.Errorf("%s: DesiredLabs read links (-full +lab):\n%s", st.name, diff)
				}
			}
		})
	}
}

// TestConcurrentDesiredWrites runs the leader's writes over two labs'
// rows (observations, lab states, management addresses) against a
// follower's edits of one of them, all at once: on PostgreSQL each takes
// rows of a lab and the lab's own row, some in one order (an edit: the lab,
// then its nodes), some in the other (addresses: nodes, then the lab's
// revision), and none may fail waiting for another.
func TestConcurrentDesiredWrites(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := openStore(t, mk(t))
			if _, err := s.RegisterHost(ctx, Host{Name: "hostA", Address: "http://a", DataIP: "10.0.0.1"}); err != nil {
				t.Fatal(err)
			}
			labs := []string{"one", "two"}
			for _, name := range labs {
				lab := demo
				lab.Name = name
				if _, err := s.CreateLab(ctx, lab); err != nil {
					t.Fatal(err)
				}
				if err := s.SetPlacements(ctx, name, map[string]string{"r1": "hostA", "r2": "hostA", "r3": "hostA"}); err != nil {
					t.Fatal(err)
				}
			}
			const rounds = 40
			writers := []func(i int) error{
				func(i int) error { // the leader's observations of both labs
					status := LinkUp
					if i%2 == 1 {
						status = LinkDown
					}
					var nodes []NodeObservation
					for _, lab := range labs {
						for _, n := range []string{"r1", "r2", "r3"} {
							nodes = append(nodes, NodeObservation{Lab: lab, Node: n, Status: status, Answered: true})
						}
					}
					return s.RecordObservations(ctx, time.Now(), Observations{Answered: []string{"hostA"}, Nodes: nodes})
				},
				func(i int) error { // a follower's edits of one lab
					return s.UpdateLab(ctx, "two", LabChange{ChangeNodes: []topology.Node{{Name: "r3", Kind: "linux", Exec: []string{fmt.Sprint(i)}}}})
				},
				func(i int) error { // lab states
					return s.SetLabState(ctx, labs[i%2], LabRunning, "")
				},
				func(i int) error { // the leader's management addresses: node rows, then the lab's
					return s.SaveMgmt(ctx, MgmtAllocation{Addresses: []NodeAddress{{Lab: "two", Node: "r3", Address: fmt.Sprintf("10.9.0.%d", 2+i%200)}}})
				},
			}
			errs := make(chan error, len(writers)*rounds)
			var wg sync.WaitGroup
			for _, w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range rounds {
						if err := w(i); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
