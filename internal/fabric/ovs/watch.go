package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
)

// Watch reports ports and interfaces that OVSDB deletes or changes, and
// links the kernel deletes or changes, until ctx ends. Events queue without
// loss while fn runs. Only one Watch may run at a time.
func (d *Driver) Watch(ctx context.Context, fn func(fabric.Event)) error {
	d.mu.Lock()
	if d.watched {
		d.mu.Unlock()
		return fmt.Errorf("watch: already watching")
	}
	d.watched = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.watched, d.events = false, nil
		d.mu.Unlock()
	}()

	lw, err := openLinkWatch(d.cfg.Netns)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	linkErr := make(chan error, 1)
	go func() { linkErr <- lw.run(d.queue) }()
	defer func() {
		lw.Close()
		<-linkErr
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-linkErr:
			if err == nil {
				err = errors.New("ended")
			}
			linkErr <- nil // for the deferred wait
			return fmt.Errorf("watch: link events: %w", err)
		case <-d.wake:
			for _, e := range d.takeEvents() {
				fn(e)
			}
		}
	}
}

// queue adds an event, of OVSDB or of the kernel's links, for Watch, if
// one runs.
func (d *Driver) queue(e fabric.Event) {
	d.mu.Lock()
	if !d.watched {
		d.mu.Unlock()
		return
	}
	d.events = append(d.events, e)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Driver) takeEvents() []fabric.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	ev := d.events
	d.events = nil
	return ev
}

// ovsdbHandler turns cache events into fabric events. It ignores what OVS
// rewrites all the time (statistics, status) so that an idle bridge is quiet.
func (d *Driver) ovsdbHandler() cache.EventHandler {
	return &cache.EventHandlerFuncs{
		AddFunc: func(table string, _ model.Model) {
			if table == "Open_vSwitch" { // the cache refilled after a reconnection
				d.signalCfg()
				return
			}
			d.rows.Add(1)
		},
		UpdateFunc: func(table string, old, cur model.Model) {
			if table != "Open_vSwitch" {
				d.rows.Add(1)
			}
			switch table {
			case "Open_vSwitch":
				d.signalCfg()
			case "Port":
				o, n := old.(*vswitchd.Port), cur.(*vswitchd.Port)
				if !portSame(o, n) {
					d.queue(fabric.Event{Kind: fabric.PortChanged, Name: n.Name})
				}
			case "Interface":
				o, n := old.(*vswitchd.Interface), cur.(*vswitchd.Interface)
				if !ifaceSame(o, n) {
					d.queue(fabric.Event{Kind: fabric.PortChanged, Name: n.Name})
				}
			}
		},
		DeleteFunc: func(table string, m model.Model) {
			d.rows.Add(1)
			if p, ok := m.(*vswitchd.Port); ok && table == "Port" {
				d.queue(fabric.Event{Kind: fabric.PortDeleted, Name: p.Name})
			}
		},
	}
}

// signalCfg tells waitApplied that the Open_vSwitch row changed.
func (d *Driver) signalCfg() {
	select {
	case d.cfgChanged <- struct{}{}:
	default:
	}
}

func portSame(a, b *vswitchd.Port) bool {
	return a.Name == b.Name && deref(a.Tag) == deref(b.Tag) && slices.Equal(a.Interfaces, b.Interfaces) &&
		maps.Equal(a.ExternalIDs, b.ExternalIDs)
}

// ifaceSame reports whether an interface is unchanged but for the columns
// ovs-vswitchd fills in once it has opened a new one (ofport, ifindex, MTU,
// link state): reporting each of those made a repair follow every large
// declaration, one that found nothing to do.
func ifaceSame(a, b *vswitchd.Interface) bool {
	return a.Name == b.Name && a.Type == b.Type && filled(a.Ofport, b.Ofport) &&
		filled(a.Ifindex, b.Ifindex) && filled(a.MTU, b.MTU) &&
		deref(a.MTURequest) == deref(b.MTURequest) && filled(a.LinkState, b.LinkState) &&
		deref(a.Error) == deref(b.Error) && maps.Equal(a.Options, b.Options)
}

// filled reports whether an optional column kept its value, or was unset
// before and has one now.
func filled[T comparable](before, after *T) bool {
	return before == nil || after != nil && *before == *after
}
