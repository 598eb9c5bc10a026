// Package e2e is netloom's end-to-end fault suite: a controller and three
// agents, all real netloom processes, on simulated hosts with their own OVS
// daemons. Every fault is followed by the same three checks: packets cross
// where links exist and not where they do not; the database and every
// bridge agree; nothing extra remains. The figures (time to recover,
// packets lost, leftovers) go to the test log and, with
// NETLOOM_RELIABILITY_REPORT=path, to a Markdown table (docs/reliability.md).
package e2e
