package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/ident"
	"github.com/netloom/netloom/internal/testbed"
	"github.com/netloom/netloom/internal/topology"
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
			if err := s.RegisterHost(ctx, Host{Name: "hostA", Address: "http://10.77.0.1:7401", DataIP: "10.77.0.1", Capabilities: []string{"ovs"}}); err != nil {
				t.Fatal(err)
			}
			if err := s.RegisterHost(ctx, Host{Name: "hostA", Address: "http://10.77.0.1:7402", DataIP: "10.77.0.1", Version: "v2"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Heartbeat(ctx, "hostZ"); !errors.Is(err, ErrNotFound) {
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
			if err := s.SetPlacementStatus(ctx, lab.ID, "r3", "deployed", "nl-demo-r3", ""); err != nil {
				t.Fatal(err)
			}
			load, err := s.NodeLoad(ctx)
			if err != nil || load["hostA"] != 2 || load["hostB"] != 1 {
				t.Errorf("load %v, %v", load, err)
			}

			// Links.
			same, cross := v.Links[0], v.Links[1]
			if err := s.SetLinkCreating(ctx, same.ID, "hostA", "hostA"); err != nil {
				t.Fatal(err)
			}
			if err := s.SetSameHostUp(ctx, same.ID, 2050); err != nil {
				t.Fatal(err)
			}
			if err := s.SetLinkCreating(ctx, cross.ID, "hostA", "hostB"); err != nil {
				t.Fatal(err)
			}
			vni, err := s.AllocateVNI(ctx, cross.ID, lab.ID, cross.Name)
			if err != nil || vni != int(ident.VNI(lab.ID, cross.Name)) {
				t.Fatalf("vni %d, %v; want the first choice %d", vni, err, ident.VNI(lab.ID, cross.Name))
			}
			if again, _ := s.AllocateVNI(ctx, cross.ID, lab.ID, cross.Name); again != vni {
				t.Errorf("a link's VNI changed: %d → %d", vni, again)
			}
			err = s.SetCrossHostUp(ctx, CrossHostUp{LinkStateID: cross.ID, LabID: lab.ID, LinkName: cross.Name, VNI: vni,
				SourceTag: 2051, TargetTag: 2070, SourceHost: "hostA", SourceIP: "10.77.0.1", TargetHost: "hostB", TargetIP: "10.77.0.2"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.UpsertMappings(ctx, lab.ID, []Mapping{{Node: "r1", Iface: "eth1", OVSPort: "nlp1", Bridge: "netloom0", Tag: 2050}}); err != nil {
				t.Fatal(err)
			}
			v, _ = s.LabView(ctx, lab.ID)
			same, cross = v.Links[0], v.Links[1]
			if same.ActualState != LinkUp || *same.SourceTag != 2050 || *same.TargetTag != 2050 || same.CrossHost {
				t.Errorf("same-host link %+v", same)
			}
			tun := cross.Tunnel
			if cross.ActualState != LinkUp || !cross.CrossHost || *cross.SourceTag != 2051 || *cross.TargetTag != 2070 || tun == nil ||
				tun.PortName != ident.PortName(lab.ID, cross.Name) || tun.IPA != "10.77.0.1" || tun.IPB != "10.77.0.2" || tun.VNI != vni {
				t.Errorf("cross-host link %+v tunnel %+v", cross, tun)
			}
			if len(v.Maps) != 1 || v.Maps[0].LastVerifiedAt == nil {
				t.Errorf("mappings %+v", v.Maps)
			}

			// A VNI another link holds is not handed out again (W-26).
			other, err := s.CreateLab(ctx, topology.Lab{Name: "other", Nodes: demo.Nodes, Links: demo.Links[1:]})
			if err != nil {
				t.Fatal(err)
			}
			ov, _ := s.LabView(ctx, other.ID)
			first := int(ident.VNI(other.ID, ov.Links[0].Name))
			if _, err := s.db.ExecContext(ctx, s.rebind(`UPDATE link_states SET vni = ? WHERE id = ?`), first, same.ID); err != nil {
				t.Fatal(err)
			}
			got, err := s.AllocateVNI(ctx, ov.Links[0].ID, other.ID, ov.Links[0].Name)
			if err != nil || got == first {
				t.Errorf("collision: vni %d, %v; want one other than %d", got, err, first)
			}

			// Failure, reset, delete.
			if err := s.SetLinkFailed(ctx, cross.ID, LinkError, PartialStatePrefix+"rollback failed", []string{"hostA"}); err != nil {
				t.Fatal(err)
			}
			v, _ = s.LabView(ctx, lab.ID)
			if l := v.Links[1]; l.ActualState != LinkError || !strings.HasPrefix(l.Error, PartialStatePrefix) || len(l.PartialHosts) != 1 {
				t.Errorf("failed link %+v", l)
			}
			if err := s.ResetLinks(ctx, lab.ID); err != nil {
				t.Fatal(err)
			}
			v, _ = s.LabView(ctx, lab.ID)
			if l := v.Links[1]; l.ActualState != LinkDown || l.Tunnel != nil || l.SourceTag != nil || l.VNI == nil || len(v.Maps) != 0 {
				t.Errorf("after reset %+v", l)
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
			if v, _ := s.Version(ctx); v != latestVersion {
				t.Errorf("version %d, want %d", v, latestVersion)
			}
		})
	}
}
