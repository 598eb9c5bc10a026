package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Postgres is a throwaway PostgreSQL server of a bed: its own cluster in the
// bed's folder, reached only through a unix socket there, so it conflicts
// with no other server and is reachable from every namespace.
type Postgres struct {
	dir  string // socket folder
	bin  string
	cred *syscall.Credential
}

// StartPostgres creates a cluster with initdb and starts postgres on it, as
// the postgres user (initdb refuses root). The bed stops it on Close.
func (b *Bed) StartPostgres(ctx context.Context) (*Postgres, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, fmt.Errorf("postgres: no initdb under /usr/lib/postgresql (install postgresql)")
	}
	slices.Sort(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p := &Postgres{dir: filepath.Join(b.dir, "pg"), bin: bin, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := os.Chown(p.dir, uid, gid); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	data := filepath.Join(p.dir, "data")
	if err := p.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		return nil, err
	}
	d, err := b.spawn(ctx, "postgres", filepath.Join(b.dir, "postgres.out"), nil, []string{
		filepath.Join(bin, "postgres"), "-D", data, "-k", p.dir, "-c", "listen_addresses=", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off",
	}, p.cred)
	if err != nil {
		return nil, err
	}
	d.closeSignal = syscall.SIGINT // fast shutdown: postgres reaps its workers
	sock := filepath.Join(p.dir, ".s.PGSQL.5432")
	err = wait(ctx, daemonStartTimeout, "postgres", func() (bool, error) {
		if err := d.exited(filepath.Join(b.dir, "postgres.out")); err != nil {
			return false, err
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	// The socket answers before the server accepts logins; pg_isready says when.
	err = wait(ctx, daemonStartTimeout, "postgres ready", func() (bool, error) {
		return exec.CommandContext(ctx, filepath.Join(bin, "pg_isready"), "-q", "-h", p.dir).Run() == nil, nil
	})
	return p, err
}

// run runs a PostgreSQL program as the postgres user.
func (p *Postgres) run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, prog), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("postgres %s: %w: %s", prog, err, bytes.TrimSpace(out))
	}
	return nil
}

// CreateDatabase creates an empty database and returns its DSN.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := p.run(ctx, "createdb", "-h", p.dir, "-U", "postgres", name); err != nil {
		return "", err
	}
	return p.DSN(name), nil
}

// DSN returns the URL of a database on the server.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=5432&sslmode=disable&connect_timeout=%d", db, p.dir, int(10*time.Second/time.Second))
}
