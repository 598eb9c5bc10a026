// Package topology reads lab files: YAML that is a superset of
// containerlab's topology format (DESIGN §3), with a `host` per node for
// placement. Decoding goes in two steps: the file into raw structs that keep
// each value's line and column, then resolving and validating those into a
// typed Lab, so that every error names the file position and the reason
// before anything changes.
//
// The controller and the CLI call it. It does no I/O beyond the bytes it is
// given and imports only ident among netloom's packages.
package topology
