package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// StateRoot holds one folder per bed, for every bed on the machine: the sweep
// of abandoned beds relies on seeing them all. It is short on purpose: unix
// socket paths must fit in 108 bytes.
const StateRoot = "/run/netloom-testbed"

// idPrefix starts every bed id, and so every namespace a bed makes.
const idPrefix = "nlt"

// underlayBridge is the Linux bridge, inside the bed's underlay namespace,
// that joins the hosts' underlay interfaces.
const underlayBridge = "br0"

// UnderlayIface is the name of each host's underlay interface.
const UnderlayIface = "ul0"

// nameRE is what host and node names may hold; they become interface and
// namespace names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Config says how to build a bed.
type Config struct {
	// Name seeds the bed's id, usually the test's name.
	Name string
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Bed is a set of simulated hosts and nodes. Its methods may be called from
// several goroutines.
type Bed struct {
	id       string
	dir      string
	underlay string // namespace name
	log      *slog.Logger

	mu sync.Mutex
	// mu guards the following.
	namespaces []string // in creation order
	daemons    []*daemon
	hosts      map[string]*Host
	nodes      map[string]*Node
	closed     bool
}

// bedSeq tells apart beds that one process starts under the same name.
var bedSeq atomic.Uint64

// New sweeps what crashed runs left under the state root, then creates an
// empty bed: its folder and its underlay namespace. Close it when done, also
// when New fails half-way.
func New(ctx context.Context, cfg Config) (*Bed, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := Sweep(log); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", cfg.Name, os.Getpid(), bedSeq.Add(1), time.Now().UnixNano()))
	id := idPrefix + hex.EncodeToString(sum[:3])
	b := &Bed{
		id:       id,
		dir:      filepath.Join(StateRoot, id),
		underlay: id + "-ul",
		log:      log.With("bed", id),
		hosts:    map[string]*Host{},
		nodes:    map[string]*Node{},
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create bed folder: %w", err)
	}
	start, err := processStart(os.Getpid())
	if err != nil {
		return b, err
	}
	owner := fmt.Sprintf("%d %d\n", os.Getpid(), start)
	if err := os.WriteFile(filepath.Join(b.dir, ownerFile), []byte(owner), 0o644); err != nil {
		return b, fmt.Errorf("write bed owner: %w", err)
	}
	if err := b.addNetns(b.underlay); err != nil {
		return b, err
	}
	err = nlns.WithHandle(b.underlay, func(h *netlink.Handle) error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: underlayBridge}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add underlay bridge: %w", err)
		}
		return h.LinkSetUp(br)
	})
	if err != nil {
		return b, err
	}
	b.log.Info("bed created", "dir", b.dir)
	return b, ctx.Err()
}

// ID returns the bed's id, the prefix of every namespace it makes. A lab
// named after it has its node namespaces ("nl-<id>-<node>-<hash>") removed with the
// bed, and swept with it after a crash.
func (b *Bed) ID() string { return b.id }

// Dir returns the bed's folder.
func (b *Bed) Dir() string { return b.dir }

// Namespaces returns the names of the namespaces the bed made, in the order
// it made them.
func (b *Bed) Namespaces() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.namespaces...)
}

// addNetns records a namespace, then creates it: a crash in between leaves a
// name that Close or a later Sweep deletes harmlessly.
func (b *Bed) addNetns(name string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("bed is closed")
	}
	b.namespaces = append(b.namespaces, name)
	b.mu.Unlock()
	return nlns.Create(name)
}

// Close stops every daemon the bed started and deletes every namespace and
// file it made. It returns every problem it met, and is safe to call twice.
func (b *Bed) Close() error {
	b.mu.Lock()
	b.closed = true
	daemons, namespaces := b.daemons, b.namespaces
	b.daemons, b.namespaces = nil, nil
	b.mu.Unlock()

	var errs []error
	for i := len(daemons) - 1; i >= 0; i-- {
		t0 := time.Now()
		errs = append(errs, daemons[i].close())
		b.log.Info("daemon stopped", "daemon", daemons[i].name, "dur", time.Since(t0))
	}
	// Namespaces of the bed that code under test made go first: node
	// namespaces of labs named after the bed, whose veths end in the hosts,
	// and agents' underlay probe namespaces, named after their hosts'.
	all, err := nlns.List()
	errs = append(errs, err)
	for _, ns := range all {
		if id, ok := bedOf(ns); ok && id == b.id && !slices.Contains(namespaces, ns) {
			errs = append(errs, nlns.Delete(ns))
		}
	}
	for i := len(namespaces) - 1; i >= 0; i-- {
		errs = append(errs, nlns.Delete(namespaces[i]))
	}
	errs = append(errs, unmountUnder(b.dir))
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove bed folder: %w", err))
	}
	b.log.Info("bed removed")
	return errors.Join(errs...)
}

// Residue lists what of the bed is still on the machine: namespaces, running
// processes that name its folder, and the folder itself. It is empty after a
// successful Close.
func (b *Bed) Residue() ([]string, error) {
	return residue(b.id, b.dir)
}

// checkName validates a host or node name against the interface-name limit.
func checkName(kind, name string, maxLen int) error {
	if !nameRE.MatchString(name) || len(name) > maxLen {
		return fmt.Errorf("%s name %q: want 1 to %d characters of [A-Za-z0-9_.-], starting with a letter or digit", kind, name, maxLen)
	}
	return nil
}

// checkPrefix validates an interface address.
func checkPrefix(what string, p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("%s %v: want an IPv4 address with prefix length", what, p)
	}
	return nil
}

// addrOf converts a prefix for netlink.
func addrOf(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}

// wait polls cond until it is true, it returns an error, or the deadline
// passes.
func wait(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
