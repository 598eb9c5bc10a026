package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/runtime/docker"
)

// Docker is a private Docker daemon of a bed: its own data root, exec root
// and socket in the bed's folder, no bridge, no iptables rules and no IP
// forwarding, so it touches nothing else on the machine. Never the
// machine's own daemon.
type Docker struct {
	// Socket is the daemon's unix socket.
	Socket string
}

// StartDocker starts a Docker daemon of the bed, for the host (or test)
// name, and waits until it answers. When the bed closes, its containers are
// removed while it still runs (after the daemons started later, such as the
// agents that use it), then it is stopped by PID.
func (b *Bed) StartDocker(ctx context.Context, name string) (*Docker, error) {
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("docker: %w (install docker.io)", err)
	}
	if err := checkName("docker", name, 32); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.dir, "docker-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	dk := &Docker{Socket: filepath.Join(dir, "docker.sock")}
	out := filepath.Join(dir, "dockerd.out")
	d, err := b.spawn(ctx, "dockerd of "+name, out, nil, []string{dockerd,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://" + dk.Socket, "--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--log-level=warn"}, nil)
	if err != nil {
		return nil, err
	}
	d.closeSignal = syscall.SIGTERM // it stops its containerd
	client := docker.NewClient(dk.Socket)
	// Its containers go first: a stopped daemon would leave them running.
	// The agents, started after it, are gone by then and make none again.
	d.drain = func() error { return removeContainers(client) }
	err = wait(ctx, daemonStartTimeout, "dockerd", func() (bool, error) {
		if err := d.exited(out); err != nil {
			return false, err
		}
		return client.Ping(ctx) == nil, nil
	})
	if err != nil {
		return nil, err
	}
	return dk, nil
}

// removeContainers removes every container of a bed's daemon, with its
// processes: a killed daemon would leave them running.
func removeContainers(c *docker.Client) error {
	ctx := context.Background()
	cs, err := c.List(ctx, "")
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, ct := range cs {
		errs = append(errs, c.Remove(ctx, ct.ID))
	}
	return errors.Join(errs...)
}

// CLI runs Debian's docker client (/usr/bin/docker: another may come first
// on PATH) against the daemon and returns its output, trimmed.
func (dk *Docker) CLI(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "/usr/bin/docker", append([]string{"-H", "unix://" + dk.Socket}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// LoadImages builds the node images of scripts/images.sh into the daemon.
// An image given as NAME=TAG is also tagged TAG, for a lab file that names
// another image ("frr=quay.io/frrouting/frr:10.2.1").
func (dk *Docker) LoadImages(ctx context.Context, images ...string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find the repository: %w", err)
	}
	script := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "scripts", "images.sh")
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, images...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dk.Socket)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("images %v: %w: %s", images, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmountUnder unmounts everything mounted below dir, deepest first: a
// daemon's namespace and overlay mounts would keep its folder.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
