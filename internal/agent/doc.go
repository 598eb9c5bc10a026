// Package agent is netloom's host agent: it serves the agent API (DESIGN
// §6), converges the host's bridge to what the controller declares, and
// keeps it there through drift, restarts and controller outages.
//
// cmd/netloom builds it with a fabric.Driver and a runtime.Runtime and calls
// Run. It never imports the controller or the store; it reaches the
// controller only over HTTP, to register and heartbeat.
//
// Invariants:
//   - one lock (converger.mu) serialises every mutation of the bridge (W-5);
//   - what the agent keeps is keyed by port name, never by link name (W-1);
//   - a declaration is planned whole (plan.go, pure) and applied as one
//     fabric.Plan: one OVSDB transaction;
//   - a bridge that cannot be read means no change, no orphan removal and no
//     cache write (W-18); only ports with netloom's ownership mark, of a lab
//     in scope, are ever removed as orphans;
//   - the cache is written before Apply, atomically, merged per lab (W-11),
//     so a crash mid-declaration restarts into the declared state.
//
// Design notes: between declarations the agent watches OVSDB and netlink and
// repairs what it keeps within a second, debounced, with a health pass every
// minute as the safety net; at start it restores from the cache before it
// registers, adopting what exists (no flush: ifindexes survive) and removing
// nothing, because an agent that just started cannot know what is stale.
package agent
