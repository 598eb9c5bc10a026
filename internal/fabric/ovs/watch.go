package ovs

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netloom/netloom/internal/fabric"
	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
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

	updates := make(chan netlink.LinkUpdate, 4096)
	subErr := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		// A declaration of a thousand tunnels makes thousands of link
		// events at once; the default buffer overflows (ENOBUFS).
		ReceiveBufferSize:      16 << 20,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case subErr <- err:
			default:
			}
		},
	}
	if d.cfg.Netns != "" {
		ns, err := nlns.Open(d.cfg.Netns)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		defer ns.Close()
		opts.Namespace = &ns
	}
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		return fmt.Errorf("watch: subscribe to links: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-subErr:
			return fmt.Errorf("watch: link events: %w", err)
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("watch: link events ended")
			}
			kind := fabric.DeviceChanged
			if u.Header.Type == unix.RTM_DELLINK {
				kind = fabric.DeviceDeleted
			}
			fn(fabric.Event{Kind: kind, Name: u.Attrs().Name})
		case <-d.wake:
			for _, e := range d.takeEvents() {
				fn(e)
			}
		}
	}
}

// queue adds an OVSDB event for Watch, if one runs.
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
		UpdateFunc: func(table string, old, cur model.Model) {
			switch table {
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
			if p, ok := m.(*vswitchd.Port); ok && table == "Port" {
				d.queue(fabric.Event{Kind: fabric.PortDeleted, Name: p.Name})
			}
		},
	}
}

func portSame(a, b *vswitchd.Port) bool {
	return a.Name == b.Name && deref(a.Tag) == deref(b.Tag) && slices.Equal(a.Interfaces, b.Interfaces) &&
		maps.Equal(a.ExternalIDs, b.ExternalIDs)
}

func ifaceSame(a, b *vswitchd.Interface) bool {
	return a.Name == b.Name && a.Type == b.Type && deref(a.Ofport) == deref(b.Ofport) &&
		deref(a.Ifindex) == deref(b.Ifindex) && deref(a.MTU) == deref(b.MTU) &&
		deref(a.MTURequest) == deref(b.MTURequest) && deref(a.LinkState) == deref(b.LinkState) &&
		deref(a.Error) == deref(b.Error) && maps.Equal(a.Options, b.Options)
}
