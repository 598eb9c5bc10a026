// Package bench holds netloom's benchmarks. Each scenario runs beside its
// baseline, the same work done the plain way with ip and ovs-vsctl, in the
// same run on the same machine, so results read as ratios rather than
// absolute times. Run them as root:
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/
//
// Benchmarks build their own simulated hosts with internal/testbed and
// remove them afterwards.
package bench
