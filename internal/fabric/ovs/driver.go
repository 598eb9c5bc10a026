package ovs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
	"github.com/netloom/netloom/internal/ident"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// Datapath types.
const (
	DatapathAuto   = "auto"
	DatapathSystem = "system"
	DatapathNetdev = "netdev"
)

// Tunnel port kinds.
const (
	// TunnelsKernel makes each tunnel a kernel VXLAN device, added to the
	// bridge as a system port.
	TunnelsKernel = "kernel"
	// TunnelsOVS makes each tunnel an OVS VXLAN interface: no kernel
	// device, and on the userspace datapath no datapath port of its own.
	TunnelsOVS = "ovs"
)

// tsoKey enables userspace TSO; ovs-vswitchd reads it only at start.
const tsoKey = "userspace-tso-enable"

// Config says which OVS and which bridge the driver works on.
type Config struct {
	// OVSDB is the database endpoint, e.g. "unix:/run/openvswitch/db.sock".
	OVSDB string
	// Bridge is the bridge's name, e.g. "netloom0".
	Bridge string
	// Datapath is "auto" (system where the openvswitch kernel module is
	// loaded, else netdev), "system" or "netdev".
	Datapath string
	// Netns is the namespace of the kernel devices; empty means the
	// driver's own.
	Netns string
	// Tunnels is how tunnels are made: "kernel" (the default when empty)
	// or "ovs". OVS's own VXLAN ports scale to thousands on the userspace
	// datapath, where every kernel device is a datapath port; there they
	// need the underlay address on an OVS bridge, userspace TSO off and
	// nodes that send complete checksums.
	Tunnels string
}

// Validate checks the configuration, naming every bad field.
func (c Config) Validate() error {
	var errs []error
	if c.OVSDB == "" {
		errs = append(errs, errors.New("ovsdb: empty"))
	}
	if c.Bridge == "" || len(c.Bridge) > 15 {
		errs = append(errs, fmt.Errorf("bridge %q: want 1 to 15 characters", c.Bridge))
	}
	switch c.Datapath {
	case "", DatapathAuto, DatapathSystem, DatapathNetdev:
	default:
		errs = append(errs, fmt.Errorf("datapath %q: want auto, system or netdev", c.Datapath))
	}
	switch c.Tunnels {
	case "", TunnelsKernel, TunnelsOVS:
	default:
		errs = append(errs, fmt.Errorf("tunnel ports %q: want kernel or ovs", c.Tunnels))
	}
	return errors.Join(errs...)
}

// Driver drives one OVS bridge and the kernel VXLAN devices beside it.
type Driver struct {
	cfg      Config
	datapath string
	log      *slog.Logger
	ovs      client.Client
	links    *linkView

	mu sync.Mutex
	// mu guards the following.
	events  []fabric.Event
	watched bool          // whether a Watch runs and events are queued
	wake    chan struct{} // signalled, capacity 1, when events grow

	// last is the last Observed with the versions of what it was read
	// from; valid false after an Apply.
	last observation

	// cfgChanged is signalled, capacity 1, when the cached Open_vSwitch
	// row changes: cur_cfg may have caught up (waitApplied).
	cfgChanged chan struct{}
	// rows counts the cache's changes to bridges, ports and interfaces.
	rows atomic.Uint64
}

// observation is an Observed and what it was read from: a later Observe
// that finds neither the cache's rows nor the kernel's links changed since
// returns it again, instead of building the same maps anew (at 10 000
// tunnels, most of a no-op declaration).
type observation struct {
	obs         fabric.Observed
	rows, links uint64
	valid       bool
}

var _ fabric.Driver = (*Driver)(nil)

// New connects to OVSDB, monitors the tables the driver uses and makes sure
// the bridge exists: datapath as configured, fail_mode standalone, up.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dbModel, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("ovsdb model: %w", err)
	}
	lr := logr.FromSlogHandler(log.Handler())
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0 // keep trying for as long as the agent runs
	c, err := client.NewOVSDBClient(dbModel,
		client.WithEndpoint(cfg.OVSDB),
		client.WithReconnect(5*time.Second, bo),
		client.WithLogger(&lr),
	)
	if err != nil {
		return nil, fmt.Errorf("ovsdb client: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to ovsdb %s: %w", cfg.OVSDB, err)
	}
	d := &Driver{cfg: cfg, log: log, ovs: c, links: &linkView{netns: cfg.Netns}, wake: make(chan struct{}, 1),
		cfgChanged: make(chan struct{}, 1)}
	_, err = c.Monitor(ctx, monitor(c, d.ovsTunnels()))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor ovsdb: %w", err)
	}
	c.Cache().AddEventHandler(d.ovsdbHandler())
	d.datapath = resolveDatapath(cfg.Datapath)
	if err := d.ensureBridge(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return d, nil
}

// monitor watches the tables the driver uses, and in them only the columns
// it reads. ovs-vswitchd rewrites every interface's statistics every few
// seconds: with whole rows monitored, each rewrite of a thousand ports was
// sent, decoded and cached, for nothing the agent reads. Interface status
// (a tunnel's egress interface) is read only for OVS tunnels: for system
// ports it is driver details, a map per port.
func monitor(c client.Client, status bool) *client.Monitor {
	root, br, port, ifc := &vswitchd.OpenvSwitch{}, &vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}
	ifcCols := []any{&ifc.Name, &ifc.Type, &ifc.Options, &ifc.MTU, &ifc.MTURequest, &ifc.Ofport, &ifc.Ifindex, &ifc.LinkState, &ifc.Error}
	if status {
		ifcCols = append(ifcCols, &ifc.Status)
	}
	return c.NewMonitor(
		client.WithTable(root, &root.Bridges, &root.NextCfg, &root.CurCfg, &root.OtherConfig),
		client.WithTable(br, &br.Name, &br.Ports, &br.DatapathType, &br.FailMode, &br.ExternalIDs),
		client.WithTable(port, &port.Name, &port.Tag, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(ifc, ifcCols...),
	)
}

// Close disconnects from OVSDB and from the link notifications. The bridge
// and its ports stay.
func (d *Driver) Close() {
	d.ovs.Close()
	d.links.Close()
}

// Datapath returns the datapath type the driver uses for the bridge.
func (d *Driver) Datapath() string { return d.datapath }

// resolveDatapath turns "auto" into system or netdev.
func resolveDatapath(want string) string {
	if want == DatapathSystem || want == DatapathNetdev {
		return want
	}
	if _, err := os.Stat("/sys/module/openvswitch"); err == nil {
		return DatapathSystem
	}
	return DatapathNetdev
}

// root returns the Open_vSwitch row from the cache.
func (d *Driver) root(ctx context.Context) (*vswitchd.OpenvSwitch, error) {
	var roots []vswitchd.OpenvSwitch
	if err := d.ovs.List(ctx, &roots); err != nil {
		return nil, fmt.Errorf("read Open_vSwitch: %w", err)
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("read Open_vSwitch: %d rows, want 1 (database not initialised?)", len(roots))
	}
	return &roots[0], nil
}

// bridge returns the bridge row from the cache, or nil when it is missing.
func (d *Driver) bridge(ctx context.Context) (*vswitchd.Bridge, error) {
	var bs []vswitchd.Bridge
	err := d.ovs.WhereCache(func(b *vswitchd.Bridge) bool { return b.Name == d.cfg.Bridge }).List(ctx, &bs)
	if err != nil {
		return nil, fmt.Errorf("read bridge %s: %w", d.cfg.Bridge, err)
	}
	if len(bs) == 0 {
		return nil, nil
	}
	return &bs[0], nil
}

// ensureBridge creates the bridge, or sets fail_mode on an existing one, and
// brings its interface up.
func (d *Driver) ensureBridge(ctx context.Context) error {
	br, err := d.bridge(ctx)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	if br == nil {
		ops, err = d.createBridgeOps(ctx, ops)
	} else {
		if br.DatapathType != d.datapath && !(br.DatapathType == "" && d.datapath == DatapathSystem) {
			d.log.Warn("bridge keeps its datapath", "bridge", br.Name, "datapath", br.DatapathType, "want", d.datapath)
		}
		if br.FailMode == nil || *br.FailMode != vswitchd.BridgeFailModeStandalone {
			ops, err = d.failModeOps(br, ops)
		}
	}
	if err != nil {
		return err
	}
	if d.datapath == DatapathNetdev {
		ops, err = d.tsoOps(ctx, ops, !d.ovsTunnels())
		if err != nil {
			return err
		}
	}
	if len(ops) > 0 {
		if err := d.transact(ctx, ops); err != nil {
			return fmt.Errorf("ensure bridge %s: %w", d.cfg.Bridge, err)
		}
		d.log.Info("bridge ready", "bridge", d.cfg.Bridge, "datapath", d.datapath)
	}
	return d.bridgeUp()
}

// createBridgeOps appends the operations that create the bridge with its
// internal port.
func (d *Driver) createBridgeOps(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.Operation, error) {
	root, err := d.root(ctx)
	if err != nil {
		return nil, err
	}
	iface := &vswitchd.Interface{UUID: "nlbrif", Name: d.cfg.Bridge, Type: "internal"}
	port := &vswitchd.Port{UUID: "nlbrport", Name: d.cfg.Bridge, Interfaces: []string{iface.UUID}}
	standalone := vswitchd.BridgeFailModeStandalone
	br := &vswitchd.Bridge{
		UUID: "nlbr", Name: d.cfg.Bridge, Ports: []string{port.UUID}, FailMode: &standalone,
		DatapathType: d.datapath, ExternalIDs: map[string]string{ident.OwnerKey: ident.OwnerValue},
	}
	for _, m := range []model.Model{iface, port, br} { // Create takes one table per call
		o, err := d.ovs.Create(m)
		if err != nil {
			return nil, fmt.Errorf("create bridge %s: %w", d.cfg.Bridge, err)
		}
		ops = append(ops, o...)
	}
	o, err := d.ovs.Where(root).Mutate(root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
	if err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", d.cfg.Bridge, err)
	}
	return append(ops, o...), nil
}

func (d *Driver) failModeOps(br *vswitchd.Bridge, ops []ovsdb.Operation) ([]ovsdb.Operation, error) {
	standalone := vswitchd.BridgeFailModeStandalone
	br.FailMode = &standalone
	o, err := d.ovs.Where(br).Update(br, &br.FailMode)
	if err != nil {
		return nil, fmt.Errorf("set fail_mode of %s: %w", br.Name, err)
	}
	return append(ops, o...), nil
}

// tsoOps turns userspace TSO on or off as want says, when it is not so
// already; it takes effect at the next start of ovs-vswitchd, which is
// logged. Kernel devices need it on for TCP; OVS's own tunnels need it off:
// OVS drops a packet with offload flags that it would have to tunnel.
func (d *Driver) tsoOps(ctx context.Context, ops []ovsdb.Operation, want bool) ([]ovsdb.Operation, error) {
	root, err := d.root(ctx)
	if err != nil {
		return nil, err
	}
	if (root.OtherConfig[tsoKey] == "true") == want {
		return ops, nil
	}
	d.log.Warn("setting userspace TSO; it takes effect when ovs-vswitchd restarts", "bridge", d.cfg.Bridge, "enabled", want)
	o, err := d.ovs.Where(root).Mutate(root,
		model.Mutation{Field: &root.OtherConfig, Mutator: ovsdb.MutateOperationDelete, Value: []string{tsoKey}},
		model.Mutation{Field: &root.OtherConfig, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{tsoKey: fmt.Sprint(want)}},
	)
	if err != nil {
		return nil, fmt.Errorf("set userspace TSO: %w", err)
	}
	return append(ops, o...), nil
}

// ovsTunnels reports whether tunnels are OVS VXLAN interfaces.
func (d *Driver) ovsTunnels() bool { return d.cfg.Tunnels == TunnelsOVS }

// NodesNeedFullChecksums reports whether nodes must send their packets
// with complete checksums: OVS's own tunnels on the userspace datapath
// neither complete a partial checksum nor take a packet that asks for it.
func (d *Driver) NodesNeedFullChecksums() bool {
	return d.ovsTunnels() && d.datapath == DatapathNetdev
}

// Tunnels returns how the driver makes tunnels: "kernel" or "ovs".
func (d *Driver) Tunnels() string {
	if d.ovsTunnels() {
		return TunnelsOVS
	}
	return TunnelsKernel
}

// bridgeUp sets the bridge's own interface up in the kernel.
func (d *Driver) bridgeUp() error {
	h, err := nlns.NewHandle(d.cfg.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(d.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge interface %s: %w", d.cfg.Bridge, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set bridge %s up: %w", d.cfg.Bridge, err)
	}
	return nil
}
