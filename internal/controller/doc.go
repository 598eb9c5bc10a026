// Package controller is netloom's controller: the source of truth for every
// lab's network. It serves the REST API under /api/v1, keeps the registry of
// agents, places nodes and orchestrates lab deploys and teardowns through
// the agents' API.
//
// cmd/netloom builds it on a store and calls Run. It reaches agents only
// through internal/agent/client; it never imports the agent itself.
//
// Invariants:
//   - a link's "creating" state is committed before any agent is called
//     (W-4), and no store transaction is open while an agent is called
//     (W-16): the store opens and closes its own;
//   - a cross-host link whose one side attached and whose other failed is
//     rolled back; if the rollback fails, the link is stored as error with
//     PARTIAL_STATE and the hosts that hold state (W-3);
//   - the tunnel row records the data-plane addresses actually used and the
//     port name (W-9).
//
// Design notes: deploy is idempotent. Running it again after a failure
// re-creates nodes (the runtime completes what exists), re-attaches every
// cross-host link that is not up (attach keeps an existing tag) and skips
// links that are up, so "fix the host, deploy again" is the recovery path.
package controller
