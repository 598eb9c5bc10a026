package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// Relay is a way to a bed's PostgreSQL server that a test can cut: a unix
// socket of its own, each connection to it relayed to the server's.
type Relay struct {
	p   *Postgres
	dir string // of the relay's socket

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns map[net.Conn]bool
}

// Relay opens a relay named name; Cut it when done.
func (p *Postgres) Relay(name string) (*Relay, error) {
	r := &Relay{p: p, dir: filepath.Join(filepath.Dir(p.dir), "pg-"+name), conns: map[net.Conn]bool{}}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("relay %s: %w", name, err)
	}
	return r, r.Restore()
}

// DSN returns the URL of a database on the server, through the relay.
func (r *Relay) DSN(db string) string {
	return strings.Replace(r.p.DSN(db), "host="+r.p.dir, "host="+r.dir, 1)
}

// Cut ends every connection through the relay and refuses new ones, as a
// network cut would, until Restore.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
}

// Restore lets connections through again.
func (r *Relay) Restore() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		return nil
	}
	sock := filepath.Join(r.dir, ".s.PGSQL.5432")
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	r.ln = ln
	go r.accept(ln)
	return nil
}

// accept relays each connection of ln until ln is closed.
func (r *Relay) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("unix", filepath.Join(r.p.dir, ".s.PGSQL.5432"))
		if err != nil {
			in.Close()
			continue
		}
		r.mu.Lock()
		if r.ln != ln { // cut meanwhile
			r.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		r.conns[in], r.conns[out] = true, true
		r.mu.Unlock()
		go r.pipe(in, out)
		go r.pipe(out, in)
	}
}

// pipe copies src to dst; when either ends, both are closed.
func (r *Relay) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}
