// Package ident computes every identifier that two parts of netloom must agree
// on: link names, VXLAN port names and first-choice VNIs.
//
// The controller and the agent both call it, and nothing else may compute
// these values: the original system computed one key in two places, in two
// ways, and ports went missing (W-12). The formulas are bit-exact with the
// original so that a netloom agent and an old controller, or the reverse,
// name the same port for the same link.
//
// ident imports only the standard library and holds no state.
package ident
