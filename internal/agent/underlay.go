package agent

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/netloom/netloom/internal/agent/underlay"
	"github.com/netloom/netloom/internal/wire"
)

// probeTimeout bounds one underlay probe: a peer on a working underlay
// answers within a millisecond or so, even across a continent within a few
// hundred.
const probeTimeout = 500 * time.Millisecond

// failRetry is the first wait before a failing peer is checked again; it
// doubles up to the underlay interval. A peer whose agent has not yet been
// told about this host cannot answer, so right after links change a first
// failure is often only that.
const failRetry = 2 * time.Second

// underlayReport is what the agent last found of its underlay, for the
// registration and heartbeats.
type underlayReport struct {
	// changed wakes the register loop to send a heartbeat at once.
	changed chan struct{}

	mu sync.Mutex
	// mu guards the following.
	mtu    int // 0 while it cannot be read
	mtuErr string
	checks []wire.UnderlayCheck
}

func newUnderlayReport() *underlayReport {
	return &underlayReport{changed: make(chan struct{}, 1)}
}

// get returns the underlay MTU and the last checks.
func (r *underlayReport) get() (int, []wire.UnderlayCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mtu, r.checks
}

// setMTU records the underlay MTU and reports whether it changed.
func (r *underlayReport) setMTU(mtu int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mtuErr = ""
	if mtu == r.mtu {
		return false
	}
	r.mtu = mtu
	r.wake()
	return true
}

// setMTUErr records that the underlay MTU cannot be read, and reports
// whether that is news: the same failure is logged once.
func (r *underlayReport) setMTUErr(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mtu != 0 {
		r.mtu = 0
		r.wake()
	}
	news := err.Error() != r.mtuErr
	r.mtuErr = err.Error()
	return news
}

// setChecks records a check's results and returns the previous ones. Only
// a change of a status or a number wakes a heartbeat, not a new time.
func (r *underlayReport) setChecks(checks []wire.UnderlayCheck) []wire.UnderlayCheck {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.checks
	r.checks = checks
	if !slices.EqualFunc(prev, checks, sameCheck) {
		r.wake()
	}
	return prev
}

// wake signals changed without blocking; the caller holds r.mu.
func (r *underlayReport) wake() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// sameCheck compares two results but for when they were taken.
func sameCheck(a, b wire.UnderlayCheck) bool {
	a.CheckedAt, b.CheckedAt = time.Time{}, time.Time{}
	return a == b
}

// peersOf returns the hosts the tunnels lead to, each with the largest MTU
// of its tunnels (defaultMTU for one that declares none), sorted by
// address. Placeholders lead nowhere yet.
func peersOf(tunnels map[string]wire.DeclaredTunnel, defaultMTU int) []underlay.Peer {
	byIP := map[netip.Addr]int{}
	for _, t := range tunnels {
		ip, err := netip.ParseAddr(t.RemoteIP)
		if t.Protected() || err != nil || !ip.Is4() {
			continue
		}
		mtu := t.MTU
		if mtu == 0 {
			mtu = defaultMTU
		}
		byIP[ip] = max(byIP[ip], mtu)
	}
	out := make([]underlay.Peer, 0, len(byIP))
	for ip, mtu := range byIP {
		out = append(out, underlay.Peer{IP: ip, LinkMTU: mtu})
	}
	slices.SortFunc(out, func(a, b underlay.Peer) int { return a.IP.Compare(b.IP) })
	return out
}

// underlayLoop checks the underlay at start, whenever the peers or the
// underlay MTU change, every underlay interval, and sooner again while a
// peer fails.
func (a *Agent) underlayLoop(ctx context.Context) {
	mtuTick := time.NewTicker(a.cfg.Heartbeat)
	defer mtuTick.Stop()
	tick := time.NewTicker(a.cfg.UnderlayInterval)
	defer tick.Stop()
	retry := time.NewTimer(failRetry)
	retry.Stop()
	first := min(failRetry, a.cfg.UnderlayInterval)
	backoff := first
	last := a.conv.peers()
	for {
		if a.checkUnderlay(ctx, last) {
			retry.Reset(backoff)
			backoff = min(2*backoff, a.cfg.UnderlayInterval)
		} else {
			retry.Stop()
			backoff = first
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.conv.heldChanged:
				peers := a.conv.peers()
				if slices.Equal(peers, last) {
					continue
				}
				last, backoff = peers, first
			case <-mtuTick.C:
				if !a.measureUnderlayMTU() {
					continue
				}
			case <-tick.C:
			case <-retry.C:
			}
			break wait
		}
	}
}

// measureUnderlayMTU records the underlay MTU and reports whether it
// changed. One that cannot be read is reported as unknown (0).
func (a *Agent) measureUnderlayMTU() bool {
	mtu, err := a.probe.UnderlayMTU()
	if err != nil {
		if a.report.setMTUErr(err) {
			a.log.Warn("underlay mtu unknown", "err", err)
		}
		a.m.underlayMTU.Set(0)
		return false
	}
	if !a.report.setMTU(mtu) {
		return false
	}
	a.m.underlayMTU.Set(float64(mtu))
	a.log.Info("underlay mtu", "mtu", mtu)
	return true
}

// checkUnderlay checks every peer and records the results; it logs each
// change of a peer's status, and reports whether any peer fails.
func (a *Agent) checkUnderlay(ctx context.Context, peers []underlay.Peer) (failing bool) {
	start := time.Now()
	a.measureUnderlayMTU()
	checks, err := a.probe.Check(ctx, peers)
	if err == nil {
		checks, err = a.confirm(ctx, peers, checks)
	}
	if ctx.Err() != nil {
		return false
	}
	a.m.underlayDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		a.log.Warn("underlay not checked", "peers", len(peers), "err", err)
		return true
	}
	prev := a.report.setChecks(checks)
	was := map[string]string{}
	for _, c := range prev {
		was[c.PeerIP] = c.Status
	}
	counts := map[string]int{wire.UnderlayOK: 0, wire.UnderlayUnreachable: 0, wire.UnderlayPortBlocked: 0, wire.UnderlayMTUTooSmall: 0}
	for _, c := range checks {
		counts[c.Status]++
		failing = failing || c.Status != wire.UnderlayOK
		if was[c.PeerIP] == c.Status {
			continue
		}
		if c.Status == wire.UnderlayOK {
			a.log.Info("underlay ok", "peer", c.PeerIP, "need_mtu", c.NeedMTU)
		} else {
			a.log.Warn("underlay failing", "peer", c.PeerIP, "status", c.Status, "reason", c.Reason)
		}
	}
	for status, n := range counts {
		a.m.underlayPeers.WithLabelValues(status).Set(float64(n))
	}
	a.log.Debug("underlay checked", "peers", len(peers), "dur", time.Since(start))
	return failing
}

// confirmDelay is how long a failure not reported before waits for each
// of its confirmTries checks again: a peer whose datapath is busy making a
// thousand ports answers late, and a late answer is not a blocked port.
const (
	confirmDelay = time.Second
	confirmTries = 3
)

// confirm checks again, after a moment and up to confirmTries times, the
// peers that newly fail to answer, so that a status change is reported only
// when it lasts; a peer that answers once is taken as it answered.
func (a *Agent) confirm(ctx context.Context, peers []underlay.Peer, checks []wire.UnderlayCheck) ([]wire.UnderlayCheck, error) {
	_, reported := a.report.get()
	was := map[string]string{}
	for _, c := range reported {
		was[c.PeerIP] = c.Status
	}
	out := slices.Clone(checks)
	at := map[string]int{} // peer → its check in out
	var again []underlay.Peer
	for i, c := range out {
		at[c.PeerIP] = i
		// A short path MTU is measured through the peer's answers: never
		// a peer that does not know this host yet.
		if c.Status == wire.UnderlayOK || c.Status == wire.UnderlayMTUTooSmall || was[c.PeerIP] == c.Status {
			continue
		}
		if j := slices.IndexFunc(peers, func(p underlay.Peer) bool { return p.IP.String() == c.PeerIP }); j >= 0 {
			again = append(again, peers[j])
		}
	}
	for range confirmTries {
		if len(again) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(confirmDelay):
		}
		second, err := a.probe.Check(ctx, again)
		if err != nil {
			return out, err
		}
		var still []underlay.Peer
		for _, c := range second {
			out[at[c.PeerIP]] = c
			if c.Status == wire.UnderlayOK || c.Status == wire.UnderlayMTUTooSmall {
				continue
			}
			if j := slices.IndexFunc(again, func(p underlay.Peer) bool { return p.IP.String() == c.PeerIP }); j >= 0 {
				still = append(still, again[j])
			}
		}
		again = still
	}
	return out, nil
}
