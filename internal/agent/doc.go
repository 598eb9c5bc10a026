// Package agent is netloom's host agent: it serves the agent API (DESIGN
// §6, §11), converges the host's nodes, bridge ports and tunnels to what the
// controller declares, and keeps them there through drift, restarts and
// controller outages.
//
// cmd/netloom builds it with a fabric.Driver and a runtime.Runtime and calls
// Run. It never imports the controller or the store; it reaches the
// controller only over HTTP, to register and heartbeat.
//
// Invariants:
//   - the agent holds one hostState (state.go): every node with its
//     interfaces' tags, and every tunnel. A host declaration replaces the
//     labs it speaks for; the original's tunnel declaration and per-link
//     calls (original.go) are edits of it; repair and restore converge to
//     it. All go through converger.converge: one observe of the bridge and
//     the runtime, one pure plan (plan.go), the runtime's work, one Apply;
//   - one lock (converger.mu) serialises every change of the host (W-5);
//   - tunnels are keyed by port name, never by link name (W-1);
//   - a host that cannot be read means no change, no removal and no cache
//     write (W-18); only objects with netloom's ownership mark are removed,
//     and only those the agent stops holding or a declaration's scope
//     covers;
//   - the cache (nodes and tunnels) is written before Apply, atomically, so
//     a crash or a reboot restarts into the declared state. A write that
//     fails removes the older cache (a restart must never restore a state
//     older than the host's) and is reported: cache_error in the answer,
//     /healthz 503, until a declaration or the health pass writes it;
//   - a conditional declaration (same_as) is the held whole declaration
//     with that digest, converged as if sent whole; one not held is
//     refused (412), never guessed;
//   - generations only go forward, and not implausibly far (declare.go's
//     fence); a declaration without one is taken only with
//     --accept-unfenced.
//
// Design notes: between declarations the agent watches OVSDB and netlink,
// and the runtimes that report events (Docker's), and repairs what it holds
// within a second, debounced (drift.go), with a health pass every
// minute as the safety net; a node deleted by hand is made again, with its
// exec commands, and its interfaces keep their MAC addresses. At start it
// restores from the cache before it registers, adopting what exists (no
// flush: ifindexes survive) and removing nothing, because an agent that just
// started cannot know what is stale. The first declaration with a generation
// then says it: the controller names every lab it knows, so what the restore
// brought back of a lab outside its scope is removed.
//
// The agent also checks the underlay to every host its tunnels lead to
// (underlay.go, with internal/agent/underlay): at start, when those peers
// or their largest MTU change, every --underlay-interval, and sooner while
// one fails. It reports, and decides nothing: the controller turns the
// results, sent with every heartbeat and at once on a change, into link
// and host states.
package agent
