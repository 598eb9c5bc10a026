package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
)

// Store is the controller's database.
type Store struct {
	db       *sql.DB
	postgres bool
	path     string   // of a SQLite database
	lock     *os.File // held by LockSole until Close
	log      *slog.Logger
	queries  atomic.Int64 // statements sent, for tests that bound them
	// sizes are how many nodes and link states the last Desired read, to
	// size the next: growing a slice of 200 000 rows by append copies
	// them again and again.
	sizes struct{ nodes, links atomic.Int64 }
}

// Open connects to a database given as "sqlite:///path/to/file.db" or
// "postgres://…", and migrates it to the latest schema.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	s, err := open(dsn, log)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.migrateTo(ctx, latestVersion); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// open connects without migrating.
func open(dsn string, log *slog.Logger) (*Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("db %q: no file path after sqlite://", dsn)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("db: %w", err)
		}
		if err := ownFile(path, log); err != nil {
			return nil, err
		}
		// Foreign keys on; writers wait rather than fail; a transaction
		// takes the write lock when it begins, so two never deadlock.
		q := "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
		db := sql.OpenDB(connector{dsn: "file:" + path + q, drv: &sqlite.Driver{}})
		return &Store{db: db, path: path, log: log}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("db: %w", err)
		}
		return &Store{db: stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(noMemoize)), postgres: true, log: log}, nil
	default:
		return nil, fmt.Errorf("db %q: want sqlite:///path or postgres://…", redact(dsn))
	}
}

// noMemoize turns PostgreSQL's memoized nested loops off on a new
// connection. Reading 200 000 nodes with their placements, the planner
// chose to look each placement up by index through a cache that never hits,
// three times slower than the hash join it picks without. A server before
// 14, which has no such setting, is left as it is.
func noMemoize(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "SET enable_memoize = off")
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42704" { // unrecognized parameter
		return nil
	}
	if err != nil {
		return fmt.Errorf("db: turn memoize off: %w", err)
	}
	return nil
}

// ownFile makes a new database file readable by its owner only, and
// refuses an empty one: SQLite would take it for a new database, and a file
// emptied by accident would lose every lab without a word.
func ownFile(path string, log *slog.Logger) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("db: %w", err)
		}
		return f.Close()
	case err != nil:
		return fmt.Errorf("db: %w", err)
	case fi.Size() == 0:
		return fmt.Errorf("db %s: an empty file, not a database: restore it from a backup, or remove it to start an empty database", path)
	case fi.Mode().Perm()&0o077 != 0:
		log.Warn("the database is readable by others: it holds the lab files and tokens of hosts", "path", path, "mode", fi.Mode().Perm().String())
	}
	return nil
}

// check runs SQLite's quick integrity check: a corrupt database is refused
// at start, not found by a query that fails every cycle.
func (s *Store) check(ctx context.Context) error {
	if s.postgres {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, "PRAGMA quick_check(5)")
	if err != nil {
		return fmt.Errorf("db: integrity check: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("db: integrity check: %w", err)
		}
		found = append(found, line)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("db: integrity check: %w", err)
	}
	if len(found) != 1 || found[0] != "ok" {
		return fmt.Errorf("db: integrity check failed, restore the database from a backup: %s", strings.Join(found, "; "))
	}
	return nil
}

// redact hides a password in a DSN for messages.
func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i >= 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// connector opens SQLite connections without the global driver registry.
type connector struct {
	dsn string
	drv driver.Driver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

// SetMaxConns bounds the connections open to the database: requests past
// it wait for one, rather than each opening its own.
func (s *Store) SetMaxConns(n int) {
	s.db.SetMaxOpenConns(n)
	s.db.SetMaxIdleConns(n)
}

// DB returns the database handle, for tests that must set up a state no
// store function writes.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database, and gives up LockSole's lock.
func (s *Store) Close() error {
	if s.lock != nil {
		defer s.lock.Close()
	}
	return s.db.Close()
}

// Queries returns how many statements the store has sent so far.
func (s *Store) Queries() int64 { return s.queries.Load() }

// exec, query, queryRow, txExec and txQuery send a statement written with ?
// placeholders, counted.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s.queries.Add(1)
	return s.db.ExecContext(ctx, s.rebind(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s.queries.Add(1)
	return s.db.QueryContext(ctx, s.rebind(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s.queries.Add(1)
	return s.db.QueryRowContext(ctx, s.rebind(q), args...)
}

func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	s.queries.Add(1)
	return tx.ExecContext(ctx, s.rebind(q), args...)
}

func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	s.queries.Add(1)
	return tx.QueryContext(ctx, s.rebind(q), args...)
}

// rebind turns ? placeholders into PostgreSQL's $n.
func (s *Store) rebind(q string) string {
	if !s.postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tx runs fn in one transaction, committed if fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := s.fence(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// txDesired runs a write to the desired state in one transaction that
// first takes the desired revision's row, which the write moves on last.
// Every such write then waits for the others at that one row before it
// locks anything else: on PostgreSQL, a write that locked a lab's rows
// and then its lab row (to move its revision) could otherwise wait in a
// cycle with one that took the same two the other way round. SQLite runs
// one write at a time anyway.
func (s *Store) txDesired(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.postgres {
			if _, err := s.txExec(ctx, tx, `SELECT value FROM desired_revision WHERE id = 1 FOR UPDATE`); err != nil {
				return fmt.Errorf("wait for the desired revision: %w", err)
			}
		}
		return fn(tx)
	})
}

// sortRows sorts rows by cmp, moving each row once: the rows a convergence
// round reads are hundreds of bytes wide, and a sort that swaps them moves
// each many times.
func sortRows[T any](rows []T, cmp func(a, b *T) int) {
	idx := make([]int32, len(rows))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp(&rows[a], &rows[b]) })
	// idx[i] is the row that goes to i: follow each cycle of the
	// permutation, marking each place done (-1) once filled.
	for i := range idx {
		if idx[i] < 0 {
			continue
		}
		first, j := rows[i], i
		for {
			k := int(idx[j])
			idx[j] = -1
			if k == i {
				rows[j] = first
				break
			}
			rows[j] = rows[k]
			j = k
		}
	}
}

// isUnique reports a unique-constraint violation on either database.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// newID returns a random UUID (version 4) as text.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func now() time.Time { return time.Now().UTC() }
