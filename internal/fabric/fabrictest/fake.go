// Package fabrictest is a fake fabric.Driver for unit tests of the logic
// above the seam: it keeps a host's data plane in memory, applies plans with
// the real driver's semantics (adopt, recreate, ownership checks), records
// every Apply, and can be told to fail.
package fabrictest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/netloom/netloom/internal/fabric"
)

// Fake is an in-memory fabric.Driver.
type Fake struct {
	mu sync.Mutex
	// mu guards the following.
	obs         fabric.Observed
	applies     []fabric.Plan
	nextIfindex int
	// ObserveErr, when set, fails every Observe.
	ObserveErr error
	// FailDevices makes creating these devices fail.
	FailDevices map[string]error
}

var _ fabric.Driver = (*Fake)(nil)

// New returns an empty host with its bridge.
func New() *Fake {
	return &Fake{
		obs:         fabric.Observed{Bridge: "netloom0", BridgeExists: true, Ports: map[string]fabric.Port{}, Devices: map[string]fabric.Device{}, Links: map[string]int{}},
		nextIfindex: 100,
	}
}

// Observe returns a copy of the host's state.
func (f *Fake) Observe(context.Context) (fabric.Observed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ObserveErr != nil {
		return fabric.Observed{}, f.ObserveErr
	}
	return fabric.Observed{
		Bridge: f.obs.Bridge, BridgeExists: f.obs.BridgeExists,
		Ports: maps.Clone(f.obs.Ports), Devices: maps.Clone(f.obs.Devices), Links: maps.Clone(f.obs.Links),
	}, nil
}

// Apply carries out a plan on the in-memory host.
func (f *Fake) Apply(_ context.Context, p fabric.Plan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ObserveErr != nil {
		return f.ObserveErr
	}
	// The whole plan is checked before anything changes, as the real
	// driver checks it.
	touched := slices.Concat(p.DeletePorts, slices.Collect(maps.Keys(p.Retag)), slices.Collect(maps.Keys(p.SetMTU)))
	for _, name := range touched {
		if port, ok := f.obs.Ports[name]; ok && !port.Owned() {
			return fmt.Errorf("change port %s: not netloom's", name)
		}
	}
	for _, ap := range p.AddPorts {
		if _, ok := f.obs.Ports[ap.Name]; ok {
			return fmt.Errorf("add port %s: it exists already", ap.Name)
		}
	}
	f.applies = append(f.applies, p)
	failed := map[string]error{}
	for _, d := range p.Devices {
		if err := f.FailDevices[d.Name]; err != nil {
			failed[d.Name] = err
			continue
		}
		cur, ok := f.obs.Devices[d.Name]
		if !ok || !cur.SameTunnel(d) {
			d.Ifindex = f.ifindex()
		} else {
			d.Ifindex = cur.Ifindex
		}
		if d.DstPort == 0 {
			d.DstPort = fabric.DefaultDstPort
		}
		d.Up = true
		f.obs.Devices[d.Name] = d
		f.obs.Links[d.Name] = d.Ifindex
	}
	for _, ap := range p.AddPorts {
		if failed[ap.Name] != nil {
			continue
		}
		ap.Ofport = len(f.obs.Ports) + 1
		ap.Ifindex = f.obs.Links[ap.Name]
		f.obs.Ports[ap.Name] = ap
	}
	for _, name := range p.DeletePorts {
		delete(f.obs.Ports, name)
	}
	for name, tag := range p.Retag {
		if port, ok := f.obs.Ports[name]; ok {
			port.Tag = tag
			f.obs.Ports[name] = port
		}
	}
	for name, mtu := range p.SetMTU {
		if port, ok := f.obs.Ports[name]; ok {
			port.MTU = mtu
			f.obs.Ports[name] = port
		}
	}
	for _, name := range p.DeleteDevices {
		delete(f.obs.Devices, name)
		delete(f.obs.Links, name)
	}
	if len(failed) > 0 {
		return &fabric.PartialError{Failed: failed}
	}
	return nil
}

// Watch does nothing until ctx ends: the fake has no drift of its own.
func (f *Fake) Watch(ctx context.Context, _ func(fabric.Event)) error {
	<-ctx.Done()
	return nil
}

func (f *Fake) ifindex() int {
	f.nextIfindex++
	return f.nextIfindex
}

// SetPort puts a port on the bridge as if someone had added it.
func (f *Fake) SetPort(p fabric.Port) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.obs.Ports[p.Name] = p
}

// SetDevice puts a device in the kernel as if someone had made it.
func (f *Fake) SetDevice(d fabric.Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.Ifindex == 0 {
		d.Ifindex = f.ifindex()
	}
	f.obs.Devices[d.Name] = d
	f.obs.Links[d.Name] = d.Ifindex
}

// SetLink puts a non-VXLAN link in the kernel, such as a veth host end.
func (f *Fake) SetLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.obs.Links[name] = f.ifindex()
}

// DeletePort removes a port as if by hand.
func (f *Fake) DeletePort(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.obs.Ports, name)
}

// Applies returns every plan applied so far.
func (f *Fake) Applies() []fabric.Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applies)
}

// Dump renders the host as sorted text, for comparing states.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(f.obs.Ports)) {
		p := f.obs.Ports[name]
		lines = append(lines, fmt.Sprintf("port %s tag=%d owner=%s/%s/%s/%s", name, p.Tag, p.Owner.Lab, p.Owner.Link, p.Owner.Node, p.Owner.Iface))
	}
	for _, name := range slices.Sorted(maps.Keys(f.obs.Devices)) {
		d := f.obs.Devices[name]
		lines = append(lines, fmt.Sprintf("device %s vni=%d %v->%v mtu=%d", name, d.VNI, d.Local, d.Remote, d.MTU))
	}
	return strings.Join(lines, "\n")
}

// ErrDown is what a fake whose OVSDB is down returns.
var ErrDown = errors.New("fabrictest: ovsdb down")
