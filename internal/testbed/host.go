package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// vswitchSchema is the OVSDB schema Debian's openvswitch-switch installs.
const vswitchSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// Timeouts for the OVS daemons; a cold start takes about 150 ms here.
const (
	daemonStartTimeout = 30 * time.Second
	stopGrace          = 5 * time.Second
	// exitTimeout is long: a killed ovs-vswitchd holding a thousand ports
	// takes seconds to close them.
	exitTimeout = 60 * time.Second
)

// maxHostName keeps "<host>" within the 15-character interface name limit:
// the host's end of its underlay veth in the underlay namespace is named
// after it.
const maxHostName = 15

// Host is a simulated host: a namespace with an underlay address and its own
// OVS daemons.
type Host struct {
	// Name is the host's name in the bed, e.g. "hostA".
	Name string
	// Netns is the host's namespace.
	Netns string
	// Underlay is the host's address on the underlay, on UnderlayIface, or
	// on PhysBridge with HostOptions.UnderlayOnOVS.
	Underlay netip.Prefix
	// Dir is the host's folder: OVS database, sockets, pid and log files.
	Dir string

	bed  *Bed
	opts HostOptions
	// daemons by program name, and how many processes Start started;
	// guarded by bed.mu.
	daemons map[string]*daemon
	started int
}

// PhysBridge is the OVS bridge that carries a host's underlay with
// HostOptions.UnderlayOnOVS.
const PhysBridge = "br-phy"

// HostOptions says how AddHostWith builds a host.
type HostOptions struct {
	// UnderlayOnOVS puts the host's underlay address on PhysBridge, an OVS
	// netdev bridge holding UnderlayIface as a port, and leaves userspace
	// TSO off: what OVS's own VXLAN ports need on the userspace datapath,
	// which routes tunnel packets only out of a bridge that holds the
	// address and cannot tunnel packets with offload flags.
	UnderlayOnOVS bool
}

// AddHost creates a host joined to the underlay with address addr (for
// example 10.77.0.1/24) and starts its ovsdb-server and ovs-vswitchd with
// userspace TSO enabled. The bridge is left to the caller.
func (b *Bed) AddHost(ctx context.Context, name string, addr netip.Prefix) (*Host, error) {
	return b.AddHostWith(ctx, name, addr, HostOptions{})
}

// AddHostWith is AddHost, with the host built as opts say.
func (b *Bed) AddHostWith(ctx context.Context, name string, addr netip.Prefix, opts HostOptions) (*Host, error) {
	h, err := b.AddMachine(ctx, name, addr)
	if err != nil {
		return nil, err
	}
	h.opts = opts
	if err := h.startOVS(ctx); err != nil {
		return nil, err
	}
	b.log.Info("host ready", "host", name, "addr", addr, "underlay_on_ovs", opts.UnderlayOnOVS)
	return h, nil
}

// AddMachine creates a host joined to the underlay without OVS: a place for
// a controller, or a client, that must reach the agents over the underlay.
func (b *Bed) AddMachine(ctx context.Context, name string, addr netip.Prefix) (*Host, error) {
	if err := checkName("host", name, maxHostName); err != nil {
		return nil, err
	}
	if err := checkPrefix("host "+name+" underlay address", addr); err != nil {
		return nil, err
	}
	h := &Host{Name: name, Netns: b.id + "-" + name, Underlay: addr, Dir: filepath.Join(b.dir, name), bed: b, daemons: map[string]*daemon{}}
	b.mu.Lock()
	_, dup := b.hosts[name]
	if !dup {
		b.hosts[name] = h
	}
	b.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("host %s exists already", name)
	}
	if err := b.addNetns(h.Netns); err != nil {
		return nil, err
	}
	if err := h.joinUnderlay(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create folder of %s: %w", h.Name, err)
	}
	return h, ctx.Err()
}

// joinUnderlay links the host to the underlay bridge and gives it its address.
func (h *Host) joinUnderlay() error {
	ul, err := nlns.Open(h.bed.underlay)
	if err != nil {
		return err
	}
	defer ul.Close()
	err = nlns.WithHandle(h.Netns, func(nh *netlink.Handle) error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: UnderlayIface},
			PeerName:      h.Name,
			PeerNamespace: netlink.NsFd(ul),
		}
		if err := nh.LinkAdd(veth); err != nil {
			return fmt.Errorf("add underlay veth of %s: %w", h.Name, err)
		}
		if err := nh.AddrAdd(veth, addrOf(h.Underlay)); err != nil {
			return fmt.Errorf("address underlay of %s: %w", h.Name, err)
		}
		return nh.LinkSetUp(veth)
	})
	if err != nil {
		return err
	}
	return nlns.WithHandle(h.bed.underlay, func(uh *netlink.Handle) error {
		peer, err := uh.LinkByName(h.Name)
		if err != nil {
			return fmt.Errorf("find underlay port of %s: %w", h.Name, err)
		}
		br, err := uh.LinkByName(underlayBridge)
		if err != nil {
			return fmt.Errorf("find underlay bridge: %w", err)
		}
		if err := uh.LinkSetMaster(peer, br); err != nil {
			return fmt.Errorf("attach %s to the underlay: %w", h.Name, err)
		}
		return uh.LinkSetUp(peer)
	})
}

// OVSDB returns the host's OVSDB endpoint, e.g. "unix:/run/…/db.sock".
func (h *Host) OVSDB() string { return "unix:" + h.path("db.sock") }

func (h *Host) path(name string) string { return filepath.Join(h.Dir, name) }

// startOVS creates the host's database and starts both daemons inside the
// host's namespace, then, with UnderlayOnOVS, puts the underlay on
// PhysBridge.
func (h *Host) startOVS(ctx context.Context) error {
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return fmt.Errorf("create folder of %s: %w", h.Name, err)
	}
	if _, err := os.Stat(h.path("conf.db")); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", h.path("conf.db"), vswitchSchema).CombinedOutput(); err != nil {
			return fmt.Errorf("create OVS database of %s: %w: %s", h.Name, err, bytes.TrimSpace(out))
		}
	}
	db, err := h.startDaemon(ctx, "ovsdb-server", h.path("conf.db"), "--remote=punix:"+h.path("db.sock"))
	if err != nil {
		return err
	}
	err = wait(ctx, daemonStartTimeout, "ovsdb-server of "+h.Name, func() (bool, error) {
		if err := db.exited(h.path("ovsdb-server.out")); err != nil {
			return false, err
		}
		c, err := net.Dial("unix", h.path("db.sock"))
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		return err
	}
	// TSO is read only when ovs-vswitchd starts, so it is set before.
	setup := []string{"--no-wait", "init"}
	if !h.opts.UnderlayOnOVS {
		setup = append(setup, "--", "set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true")
	}
	if _, err := h.VSCtl(ctx, setup...); err != nil {
		return err
	}
	vs, err := h.startDaemon(ctx, "ovs-vswitchd", "unix:"+h.path("db.sock"))
	if err != nil {
		return err
	}
	// Without --no-wait, ovs-vsctl bumps next_cfg and returns once
	// ovs-vswitchd has caught up: then it is ready.
	if _, err := h.VSCtl(ctx, "init"); err != nil {
		return errors.Join(err, vs.exited(h.path("ovs-vswitchd.out")))
	}
	if h.opts.UnderlayOnOVS {
		return h.underlayOnOVS(ctx)
	}
	return nil
}

// underlayOnOVS makes PhysBridge, holding UnderlayIface as a port, and
// moves the underlay address from UnderlayIface to the bridge's internal
// interface. It runs after every start of ovs-vswitchd, so that a wiped
// database gets the bridge back; each step is a no-op when done already.
func (h *Host) underlayOnOVS(ctx context.Context) error {
	// Without --no-wait, ovs-vsctl returns once ovs-vswitchd has made the
	// internal interface.
	if _, err := h.VSCtl(ctx, "--may-exist", "add-br", PhysBridge, "--", "set", "bridge", PhysBridge, "datapath_type=netdev",
		"--", "--may-exist", "add-port", PhysBridge, UnderlayIface); err != nil {
		return err
	}
	// A physical NIC hands OVS packets with complete checksums; a veth
	// passes on its sender's partial ones, which OVS forwards as they are,
	// and the host's own stack then drops TCP from the underlay (the
	// controller's answers). The underlay's end towards the host completes
	// them, as a NIC would.
	ul, err := nlns.Open(h.bed.underlay)
	if err != nil {
		return err
	}
	err = nlns.FullChecksums(ul, "the underlay", []string{h.Name})
	ul.Close()
	if err != nil {
		return err
	}
	return nlns.WithHandle(h.Netns, func(nh *netlink.Handle) error {
		ul, err := nh.LinkByName(UnderlayIface)
		if err != nil {
			return fmt.Errorf("find underlay of %s: %w", h.Name, err)
		}
		br, err := nh.LinkByName(PhysBridge)
		if err != nil {
			return fmt.Errorf("find %s of %s: %w", PhysBridge, h.Name, err)
		}
		if err := nh.AddrDel(ul, addrOf(h.Underlay)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("take the underlay address of %s off %s: %w", h.Name, UnderlayIface, err)
		}
		if err := nh.AddrReplace(br, addrOf(h.Underlay)); err != nil {
			return fmt.Errorf("address %s of %s: %w", PhysBridge, h.Name, err)
		}
		if err := nh.LinkSetUp(br); err != nil {
			return fmt.Errorf("set %s of %s up: %w", PhysBridge, h.Name, err)
		}
		// The internal interface is a persistent tap, there before
		// ovs-vswitchd opens it again after a restart, a while after it
		// says it is ready; until then it has no carrier and drops what
		// the host sends.
		return wait(ctx, daemonStartTimeout, PhysBridge+" of "+h.Name+" carried by ovs-vswitchd", func() (bool, error) {
			l, err := nh.LinkByName(PhysBridge)
			if err != nil {
				return false, fmt.Errorf("find %s of %s: %w", PhysBridge, h.Name, err)
			}
			return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0, nil
		})
	})
}

// daemon is a process the bed started as its child: an OVS daemon, or a
// netloom process a test runs inside a host.
type daemon struct {
	name string
	// closeSignal, when set, ends the process on Close instead of SIGKILL,
	// for a server that must reap its own children.
	closeSignal syscall.Signal
	// drain, when set, runs before the daemon is ended on Close: after the
	// daemons started later (its clients) are gone.
	drain func() error
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has been reaped
	err   error         // the exit status, once done is closed
}

// close ends the daemon when its bed closes: everything goes, so there is no
// need to be graceful, unless the daemon asks for its closeSignal.
func (d *daemon) close() error {
	var drained error
	if d.drain != nil {
		drained = d.drain()
	}
	if d.closeSignal == 0 {
		return errors.Join(drained, d.stop(0))
	}
	_ = d.cmd.Process.Signal(d.closeSignal)
	select {
	case <-d.done:
		return drained
	case <-time.After(stopGrace):
		return errors.Join(drained, d.stop(0))
	}
}

// Process is a program a test started inside a host with Host.Start.
type Process struct {
	d       *daemon
	outPath string
}

// Start runs a program inside the host's network namespace as a child of the
// bed, with its output in <host dir>/<name>.<n>.out. The bed kills it on
// Close. Unlike `ip netns exec`, it keeps the machine's mount namespace, so
// named namespaces the program makes (a netns node runtime's) are visible
// to everyone, as they are for an agent on a real host.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Process, error) {
	h.bed.mu.Lock()
	h.started++
	out := h.path(fmt.Sprintf("%s.%d.out", filepath.Base(name), h.started))
	h.bed.mu.Unlock()
	argv := append([]string{"nsenter", "--net=" + filepath.Join(nlns.Dir, h.Netns), "--", name}, args...)
	d, err := h.startProcess(ctx, filepath.Base(name), out, nil, argv)
	if err != nil {
		return nil, err
	}
	return &Process{d: d, outPath: out}, nil
}

// PID returns the process's PID.
func (p *Process) PID() int { return p.d.cmd.Process.Pid }

// Kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *Process) Kill() error { return p.d.stop(0) }

// Exited returns an error with the process's output once it has ended.
func (p *Process) Exited() error { return p.d.exited(p.outPath) }

// Output returns what the process wrote so far.
func (p *Process) Output() string {
	out, _ := os.ReadFile(p.outPath)
	return string(out)
}

// Pause stops the process with SIGSTOP and returns once every thread of it
// has stopped, so that a test can change in several steps what the process
// watches and the process sees only the result. Resume it in a defer or
// t.Cleanup, so that a failing test cannot leave it stopped; Close kills a
// paused process as any other.
func (p *Process) Pause() error {
	pid := p.PID()
	if err := p.d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause %s (pid %d): %w", p.d.name, pid, err)
	}
	deadline := time.Now().Add(stopGrace)
	for {
		stopped, err := threadsStopped(pid)
		if err != nil {
			return fmt.Errorf("pause %s (pid %d): %w", p.d.name, pid, err)
		}
		if stopped {
			return nil
		}
		if err := p.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pause %s (pid %d): not stopped within %v", p.d.name, pid, stopGrace)
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume continues a paused process with SIGCONT. A process that runs is
// left as it is, and one that has ended is no error.
func (p *Process) Resume() error {
	if err := p.d.cmd.Process.Signal(syscall.SIGCONT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("resume %s (pid %d): %w", p.d.name, p.PID(), err)
	}
	return nil
}

// threadsStopped reports whether no thread of process pid can run: each is
// stopped (state T in /proc/<pid>/task/<tid>/stat) or dead. SIGSTOP returns
// before the threads on other CPUs have stopped.
func threadsStopped(pid int) (bool, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false, fmt.Errorf("no threads under /proc/%d (err %v)", pid, err)
	}
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			return false, nil // a thread that just ended: look again
		}
		// "tid (comm) state …", where comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || i+2 >= len(data) {
			return false, fmt.Errorf("%s: unexpected %q", path, data)
		}
		if state := data[i+2]; state != 'T' && state != 'Z' && state != 'X' {
			return false, nil
		}
	}
	return true, nil
}

// startDaemon starts an OVS daemon with pid file, control socket and log in
// the host's folder.
func (h *Host) startDaemon(ctx context.Context, name string, args ...string) (*daemon, error) {
	full := append(append([]string{name}, args...),
		"--pidfile="+h.path(name+".pid"),
		"--unixctl="+h.path(name+".ctl"),
		"--log-file="+h.path(name+".log"),
	)
	env := []string{"OVS_RUNDIR=" + h.Dir, "OVS_LOGDIR=" + h.Dir, "OVS_DBDIR=" + h.Dir, "OVS_SYSCONFDIR=" + h.Dir}
	// ip netns exec also gives the daemon a /sys of the host's namespace.
	d, err := h.startProcess(ctx, name, h.path(name+".out"), env, append([]string{"ip", "netns", "exec", h.Netns}, full...))
	if err != nil {
		return nil, err
	}
	h.bed.mu.Lock()
	h.daemons[name] = d
	h.bed.mu.Unlock()
	return d, nil
}

// startProcess starts argv, which enters the host's namespace itself, and
// records it for Close before it starts.
func (h *Host) startProcess(ctx context.Context, name, outPath string, env, argv []string) (*daemon, error) {
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create folder of %s: %w", h.Name, err)
	}
	return h.bed.spawn(ctx, h.Name+"/"+name, outPath, env, argv, nil)
}

// spawn starts argv as a child of the bed, as cred's user when set, with its
// output in outPath, and records it for Close before it starts.
func (b *Bed) spawn(ctx context.Context, name, outPath string, env, argv []string, cred *syscall.Credential) (*daemon, error) {
	logf, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open output of %s: %w", name, err)
	}
	defer logf.Close() // the child holds its own copy
	// Not CommandContext: the process outlives the call that starts it.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C meant for the test does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("bed is closed")
	}
	if err := cmd.Start(); err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b.daemons = append(b.daemons, d)
	b.mu.Unlock()
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, ctx.Err()
}

// exited returns an error with the daemon's output if it has ended.
func (d *daemon) exited(outPath string) error {
	select {
	case <-d.done:
		out, _ := os.ReadFile(outPath)
		return fmt.Errorf("%s exited: %v: %s", d.name, d.err, bytes.TrimSpace(out))
	default:
		return nil
	}
}

// stop ends the daemon: SIGTERM, then SIGKILL after grace; a grace of 0
// kills at once. It waits up to exitTimeout for the process to be reaped.
func (d *daemon) stop(grace time.Duration) error {
	select {
	case <-d.done:
		return nil
	default:
	}
	if grace > 0 {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
			return nil
		case <-time.After(grace):
		}
	}
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
		return nil
	case <-time.After(exitTimeout):
		return fmt.Errorf("%s (pid %d) did not exit", d.name, d.cmd.Process.Pid)
	}
}

// RestartOVS stops both OVS daemons and starts them again, on an empty
// database when wipe is set: what a host reboot or an operator's
// `rm conf.db` does to the bridge.
func (h *Host) RestartOVS(ctx context.Context, wipe bool) error {
	for _, name := range []string{"ovs-vswitchd", "ovsdb-server"} {
		if err := h.StopDaemon(name); err != nil {
			return err
		}
	}
	if wipe {
		if err := os.Remove(h.path("conf.db")); err != nil {
			return fmt.Errorf("wipe OVS database of %s: %w", h.Name, err)
		}
	}
	return h.startOVS(ctx)
}

// StopDaemon stops one of the host's OVS daemons ("ovsdb-server" or
// "ovs-vswitchd") by PID, as a crash or an operator would.
func (h *Host) StopDaemon(name string) error {
	h.bed.mu.Lock()
	d := h.daemons[name]
	h.bed.mu.Unlock()
	if d == nil {
		return fmt.Errorf("host %s runs no %s", h.Name, name)
	}
	return d.stop(stopGrace)
}

// Exec runs a command inside the host's namespace and returns its combined
// output.
func (h *Host) Exec(ctx context.Context, name string, args ...string) (string, error) {
	return ExecIn(ctx, h.Netns, name, args...)
}

// Ping sends count echo requests from the host to dst; see ping.
func (h *Host) Ping(ctx context.Context, dst netip.Addr, count int) (int, error) {
	return PingFrom(ctx, h.Netns, dst, count)
}

// VSCtl runs ovs-vsctl against the host's database, as an engineer would by
// hand, and returns its output.
func (h *Host) VSCtl(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--db=" + h.OVSDB(), "--timeout=30"}, args...)
	out, err := exec.CommandContext(ctx, "ovs-vsctl", full...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ovs-vsctl %s on %s: %w: %s", strings.Join(args, " "), h.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// ExecIn runs a command inside namespace ns and returns its combined output.
func ExecIn(ctx context.Context, ns, name string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", ns, name}, args...)
	out, err := exec.CommandContext(ctx, "ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}
