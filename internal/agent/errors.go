package agent

import "errors"

// Sentinel errors the HTTP layer maps to status codes.
var (
	// ErrStaleGeneration: a declaration older than the last applied (409).
	ErrStaleGeneration = errors.New("stale generation")
	// ErrGenerationRefused: a declaration without a generation, or one
	// implausibly far ahead of the last applied (409).
	ErrGenerationRefused = errors.New("generation refused")
	// ErrNotFound: the port, node or link named does not exist here (404).
	ErrNotFound = errors.New("not found")
	// ErrNotOwned: the port exists but is not netloom's, or not the lab's (409).
	ErrNotOwned = errors.New("not netloom's")
	// ErrNotHeld: a conditional declaration names a declaration this agent
	// does not hold; the controller sends it whole (412).
	ErrNotHeld = errors.New("declaration not held")
	// ErrUnauthorized: a missing or wrong bearer token (401).
	ErrUnauthorized = errors.New("missing or wrong bearer token")
)
