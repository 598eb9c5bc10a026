package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// ErrNotLeader is why a controller that does not hold the leader's lease
// gets no generation: a deposed leader cannot declare anything new.
var ErrNotLeader = errors.New("not the leader")

// ErrHeld is why a second controller is refused a SQLite database.
var ErrHeld = errors.New("held by another controller")

// Shared reports whether several controllers can use the database at once:
// PostgreSQL can, SQLite cannot.
func (s *Store) Shared() bool { return s.postgres }

// LockSole makes this process the only controller on a SQLite database
// until Close: a second one is refused with ErrHeld. The lock is the
// kernel's (flock on "<db>.lock", beside the database: the database's own
// descriptors are SQLite's), so it goes with a process that dies.
func (s *Store) LockSole() error {
	if s.postgres || s.lock != nil {
		return nil
	}
	f, err := os.OpenFile(s.path+".lock", os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", s.path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("db %s: %w: SQLite cannot have several controllers; use PostgreSQL for that", s.path, ErrHeld)
		}
		return fmt.Errorf("lock %s: %w", s.path, err)
	}
	s.lock = f
	return nil
}

// leaderKey carries, in a context, the leader the store fences writes for.
type leaderKey struct{}

// AsLeader returns ctx for the work of the leader id: each transaction the
// store begins in it first checks that id holds the lease, and fails with
// ErrNotLeader when it does not. On PostgreSQL the check holds the lease
// row until the transaction ends, so a follower takes the lease only after
// it: a deposed leader's late writes are refused as agents refuse its late
// declarations. id "" (the sole controller) is not fenced.
func AsLeader(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, leaderKey{}, id)
}

// fence checks, inside tx, that the leader of ctx (if any) holds the lease.
func (s *Store) fence(ctx context.Context, tx *sql.Tx) error {
	id, _ := ctx.Value(leaderKey{}).(string)
	if id == "" {
		return nil
	}
	q := `SELECT 1 FROM controller_lease WHERE id = 1 AND holder = ? AND expires_ms > ` + s.nowMS()
	if s.postgres {
		q += ` FOR SHARE`
	}
	rows, err := s.txQuery(ctx, tx, q, id)
	if err != nil {
		return fmt.Errorf("check the lease: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("check the lease: %w", err)
		}
		return fmt.Errorf("%s: %w", id, ErrNotLeader)
	}
	return rows.Close()
}

// nowMS is the database's clock in milliseconds since the epoch: leases are
// compared on one clock, whatever the controllers' clocks say.
func (s *Store) nowMS() string {
	if s.postgres {
		return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}

// TakeLease takes the leader's lease for the controller id, or renews it,
// for ttl, when id holds it or it expired; it returns who holds it after
// (id when taken). It also records that id is alive.
func (s *Store) TakeLease(ctx context.Context, id string, ttl time.Duration) (string, error) {
	var holder string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `INSERT INTO controllers (id, seen_ms) VALUES (?, `+s.nowMS()+`)
			ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms`, id); err != nil {
			return err
		}
		if _, err := s.txExec(ctx, tx, `INSERT INTO controller_lease (id, holder, expires_ms) VALUES (1, ?, `+s.nowMS()+` + ?)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
			WHERE controller_lease.holder = excluded.holder OR controller_lease.expires_ms < `+s.nowMS(), id, ttl.Milliseconds()); err != nil {
			return err
		}
		rows, err := s.txQuery(ctx, tx, `SELECT holder FROM controller_lease WHERE id = 1`)
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			return errors.New("no lease row")
		}
		if err := rows.Scan(&holder); err != nil {
			return err
		}
		return rows.Close()
	})
	if err != nil {
		return "", fmt.Errorf("take lease: %w", err)
	}
	return holder, nil
}

// ReleaseLease ends id's lease at once, when it holds it: a controller that
// shuts down lets another lead without waiting for the lease to expire.
func (s *Store) ReleaseLease(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `UPDATE controller_lease SET expires_ms = 0 WHERE id = 1 AND holder = ?`, id); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// ControllerRow is a controller that used the database.
type ControllerRow = wire.ControllerView

// Controllers lists the controllers that used the database, by id.
func (s *Store) Controllers(ctx context.Context) ([]ControllerRow, error) {
	rows, err := s.query(ctx, `SELECT c.id, `+s.nowMS()+` - c.seen_ms,
		CASE WHEN l.holder = c.id AND l.expires_ms > `+s.nowMS()+` THEN 1 ELSE 0 END
		FROM controllers c LEFT JOIN controller_lease l ON l.id = 1 ORDER BY c.id`)
	if err != nil {
		return nil, fmt.Errorf("read controllers: %w", err)
	}
	defer rows.Close()
	var out []ControllerRow
	for rows.Next() {
		var c ControllerRow
		var ago int64
		var leader int
		if err := rows.Scan(&c.ID, &ago, &leader); err != nil {
			return nil, fmt.Errorf("read controllers: %w", err)
		}
		c.SeenAgo, c.Leader = time.Duration(ago)*time.Millisecond, leader == 1
		out = append(out, c)
	}
	return out, rows.Err()
}
