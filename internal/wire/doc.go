// Package wire holds every JSON shape that crosses a socket between netloom's
// parts: the agent API (DESIGN §6) and, as they arrive, the controller's REST
// API. Field names are the original system's, so that either side can talk
// to the other's counterpart; fields marked "new" are additions.
//
// wire imports only the standard library and does no I/O. Its validators
// check a whole request and return a *ValidationError that lists every
// problem with the field it concerns, so a client fixes everything at once
// and a server changes nothing on bad input.
package wire
