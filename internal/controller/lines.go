package controller

import (
	"sync"
	"time"

	"github.com/netloom/netloom/internal/wire"
)

// hostLines orders the declarations to each host and keeps what the last
// one found. A host has one declaration in flight at a time; a newer one
// waits for it, and replaces any older one still waiting, so a host never
// gets an older generation after a newer one, and a slow host holds up only
// its own line. A declaration that was replaced, or that came after a
// newer one, does not go: it ends with what the newer one did.
type hostLines struct {
	mu sync.Mutex
	// mu guards the following.
	lines map[string]*hostLine
}

type hostLine struct {
	current *slot // in flight
	waiting *slot // the newest declaration waiting for its turn
	contact contact
}

// slot is one declaration's place in its host's line.
type slot struct {
	gen  int64
	turn chan struct{} // closed when it may go
	done chan struct{} // closed when it, or the one that replaced it, ended
	// sum is what the declaration that went did, set before done closes.
	sum wire.AgentConvergence
	// replaced are older declarations that end when this one does.
	replaced []*slot
}

// contact is what the last declaration to a host found: an answer, or why
// none came, and when.
type contact struct {
	at     time.Time // of the last declaration's end
	failed string    // why it got no answer; "" when it got one
	since  time.Time // of the first of the failures in a row
}

func newHostLines() *hostLines { return &hostLines{lines: map[string]*hostLine{}} }

func (l *hostLines) line(host string) *hostLine {
	hl := l.lines[host]
	if hl == nil {
		hl = &hostLine{}
		l.lines[host] = hl
	}
	return hl
}

// enter puts the declaration of generation gen to host in its line. The
// caller waits for its turn (then declares and calls leave) or for done (it
// was replaced: sum says what the newer declaration did). The wait is
// bounded by the declaration in flight, which DeclareTimeout bounds.
func (l *hostLines) enter(host string, gen int64) *slot {
	l.mu.Lock()
	defer l.mu.Unlock()
	hl := l.line(host)
	s := &slot{gen: gen, turn: make(chan struct{}), done: make(chan struct{})}
	newest := hl.waiting
	if newest == nil {
		newest = hl.current
	}
	switch {
	case newest != nil && newest.gen > gen:
		newest.replaced = append(newest.replaced, s)
	case hl.current == nil:
		hl.current = s
		close(s.turn)
	default:
		if w := hl.waiting; w != nil {
			s.replaced = append(w.replaced, w)
			w.replaced = nil
		}
		hl.waiting = s
	}
	return s
}

// leave ends the declaration in flight to host with what it did, ends
// those it replaced alike, and gives the turn to the one waiting.
func (l *hostLines) leave(host string, s *slot, sum wire.AgentConvergence) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hl := l.line(host)
	for _, r := range append(s.replaced, s) {
		r.sum = sum
		close(r.done)
	}
	hl.current, hl.waiting = hl.waiting, nil
	if hl.current != nil {
		close(hl.current.turn)
	}
}

// observe records how a declaration to host ended: failed is why it got no
// answer, "" when it got one.
func (l *hostLines) observe(host string, at time.Time, failed string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hl := l.line(host)
	if failed == "" || hl.contact.failed == "" {
		hl.contact.since = at
	}
	hl.contact.at, hl.contact.failed = at, failed
}

// contact returns what the last declaration to host found; zero before
// the first.
func (l *hostLines) contact(host string) contact {
	l.mu.Lock()
	defer l.mu.Unlock()
	if hl := l.lines[host]; hl != nil {
		return hl.contact
	}
	return contact{}
}
