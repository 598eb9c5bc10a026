package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/netloom/netloom/internal/ident"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// latestVersion is the schema version this build brings databases to.
const latestVersion = 13

// migrator returns a goose provider over the embedded SQL migrations plus
// the Go ones, without goose's global registry.
func (s *Store) migrator() (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	dialect := goose.DialectSQLite3
	if s.postgres {
		dialect = goose.DialectPostgres
	}
	return goose.NewProvider(dialect, s.db, sub,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goose.NewGoMigration(2,
			&goose.GoFunc{RunTx: s.migratePortName},
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
				_, err := s.txExec(ctx, tx, `ALTER TABLE vxlan_tunnels DROP COLUMN port_name`)
				return err
			}},
		)),
	)
}

// migrateTo brings the schema to version.
func (s *Store) migrateTo(ctx context.Context, version int64) error {
	p, err := s.migrator()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// Version returns the schema version of the database.
func (s *Store) Version(ctx context.Context) (int64, error) {
	p, err := s.migrator()
	if err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}

// migratePortName is migration 2: vxlan_tunnels.port_name, back-filled from
// the link each tunnel belongs to; a tunnel without a link state stays NULL.
// It is Go, not SQL, because the name is ident's md5 formula.
func (s *Store) migratePortName(ctx context.Context, tx *sql.Tx) error {
	if _, err := s.txExec(ctx, tx, `ALTER TABLE vxlan_tunnels ADD COLUMN port_name TEXT`); err != nil {
		return err
	}
	rows, err := s.txQuery(ctx, tx, `SELECT vt.id, ls.lab_id, ls.link_name FROM vxlan_tunnels vt
		JOIN link_states ls ON vt.link_state_id = ls.id WHERE vt.link_state_id IS NOT NULL`)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for rows.Next() {
		var id, lab, link string
		if err := rows.Scan(&id, &lab, &link); err != nil {
			rows.Close()
			return err
		}
		names[id] = ident.PortName(lab, link)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for id, name := range names {
		if _, err := s.txExec(ctx, tx, `UPDATE vxlan_tunnels SET port_name = ? WHERE id = ?`, name, id); err != nil {
			return err
		}
	}
	return nil
}
