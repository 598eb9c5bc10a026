// Package controller is netloom's controller: the source of truth for every
// lab's network. It serves the REST API under /api/v1 and a web view of it
// under /ui/ (web.go, pages embedded from web/), keeps the registry of
// agents, places nodes, allocates tags and VNIs, and declares to each host
// the whole state netloom wants there (DESIGN §11).
//
// cmd/netloom builds it on a store and calls Run. It reaches agents only
// through internal/agent/client; it never imports the agent itself.
//
// Invariants:
//   - a deploy or destroy changes the desired state and prepares the round
//     that declares it under one lock (stateMu), so no declaration carries a
//     state read before a change (W-4); no lock and no store transaction is
//     held while an agent is called (W-16): calls run per host, in the
//     host's line, one at a time and newest first, so a hung host holds up
//     only itself; an answer is recorded only when no newer round was
//     prepared for its host;
//   - a host gets one declaration per round, all of it, under a fresh
//     generation; every lab in the database is in its scope. When its
//     agent holds that very declaration, it goes by digest (same_as), and
//     an answer the controller holds comes back by digest (same_answer;
//     conditional.go): the agent still converges all of it;
//   - a link side keeps its tag while its node stays on its host; tags are
//     unique per host, VNIs unique in the database and kept for life;
//   - what users see is what the agents answered: a side whose host could
//     not be asked is unknown, never up; a cross-host link with one side up
//     and the other failed is PARTIAL_STATE, naming the host that holds
//     state (W-3); tunnel rows hold the hosts' current addresses (W-9);
//   - the leader keeps the desired state, its allocations and declarations
//     between rounds (desired.go) only while the store's desired revision
//     and the hosts' addresses are those it was read with, reading again
//     the labs whose revisions moved (and declaring again their hosts)
//     while no other write did, and starts each term without it: a
//     follower's writes go to the database alone.
//
// Design notes: the pure half of a round (allocate, hostDeclarations,
// observe, linkState, labState in state.go) does no I/O and is tested on
// its own; the round itself (converge.go) only reads, declares in parallel
// and writes batches, so the statements it sends do not grow with links.
// Deploy is "change the desired state, declare": running it again, or any
// later round, heals what a host lost.
package controller
