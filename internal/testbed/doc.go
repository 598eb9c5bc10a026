// Package testbed builds simulated netloom hosts on one machine: each host is
// a network namespace with its own ovsdb-server and ovs-vswitchd (userspace
// netdev datapath), joined to the others by an underlay; nodes are namespaces
// whose veth interfaces end in a host.
//
// Tests, bench/ and `netloom demo` import it; product code never does. On
// top of hosts and nodes it offers a throwaway PostgreSQL server per bed
// (StartPostgres) and a whole Cluster: a controller machine and an agent per
// host, all netloom processes, reached over the underlay. It only
// builds hosts and wires: it never decides what a bridge should hold, that is
// the agent's job, so a test can build a data plane by hand (as an engineer
// would with ovs-vsctl and ip) or let an agent do it.
//
// Invariants:
//   - every namespace is named "<id>-<name>", where id is "nlt" and six hex
//     digits unique to the bed, and every file, socket and pid file lives in
//     the bed's folder <StateRoot>/<id>; nothing is created in the root netns;
//   - a bed records what it made before it makes it, so Close removes
//     everything also after a failed or half-built bed;
//   - New first sweeps beds whose owning process is gone (a crashed run):
//     their daemons, identified by PID and by their command line naming the
//     bed's folder, their namespaces and their folder.
//
// Design notes: the daemons run as children started through `ip netns exec`,
// which setns()es and then execs in place, so the child's PID is the daemon's
// PID and no --detach double fork hides it. Namespaces and links are made
// over netlink from handles bound to each namespace, so no thread of the test
// process ever leaves the root netns for longer than creating a namespace.
// Userspace TSO is enabled before ovs-vswitchd starts: with the kernel VXLAN
// device as a tagged system port it makes TCP work without touching the
// nodes' offloads (feasibility A.4, variant 2).
package testbed
