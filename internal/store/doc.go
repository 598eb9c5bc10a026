// Package store keeps the controller's state in SQLite (default, one file,
// pure Go) or PostgreSQL: hosts, labs, nodes, placements, links, link
// states, VXLAN tunnels, interface mappings and the declaration generation.
//
// Only the controller calls it. The schema evolves by numbered migrations
// embedded in the binary (migrations/, plus Go migrations where SQL cannot
// compute a value) and applied at Open on both databases.
//
// Invariants:
//   - no *sql.Tx leaves this package: every function opens and closes its own
//     transaction, so none can span a call to an agent (W-16);
//   - a VNI is unique in the database (link_states.vni): SaveAllocations
//     fails the batch on a taken one, and a link keeps its VNI for life
//     (W-26);
//   - a round's writes are batches (one JSON parameter per statement), so
//     the statements it sends do not grow with links;
//   - vxlan_tunnels.port_name is written wherever a tunnel row is written;
//     readers compute it when an old row has NULL;
//   - every write to what Desired returns, hosts aside, moves the desired
//     revision on in its own transaction (txDesired, which takes the
//     revision's row before anything else, so such writes never wait on
//     each other in a cycle), so a
//     reader may keep what it read while Revision has not moved; a write
//     to one lab's rows moves that lab's revision (bumpLabs, from the rows
//     it wrote), any other moves Whole (bump), so a reader may read again
//     only the labs that moved (Revisions, DesiredLabs) while Whole has
//     not.
//
// Design notes: queries are written once with ? placeholders and rebound to
// $n for PostgreSQL; the SQL is the portable subset both speak. Timestamps
// are UTC.
package store
