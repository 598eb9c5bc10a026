package runtime

import "context"

// Watcher is a runtime that reports, as they happen, changes to its nodes
// made behind the agent's back: a container that died or started again.
// It is optional: a runtime whose nodes change only through the host's
// links (netns) has no events of its own, and its drift is seen by the
// fabric driver's watch.
type Watcher interface {
	// Watch calls changed for every event until ctx ends (then it returns
	// nil) or the event stream breaks (then it returns an error, and the
	// caller watches again and repairs what it may have missed). changed
	// must not block.
	Watch(ctx context.Context, changed func(Event)) error
}

// Event is one change to a node, reported by a Watcher. It says only which
// node to look at and why: the agent repairs from a fresh List, never from
// the event.
type Event struct {
	Lab  string
	Node string
	// Cause says what happened in the runtime's words, e.g. "container
	// died": it becomes the repair's cause.
	Cause string
}

// Watchers returns the runtimes of the set that report events.
func (s Set) Watchers() []Watcher {
	var out []Watcher
	for _, r := range s.all() {
		if w, ok := r.(Watcher); ok {
			out = append(out, w)
		}
	}
	return out
}
