package controller

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// viewFor bounds how long an encoded view is reused, even when no
	// write was seen: writes the controller does not see (another
	// controller's, by hand) show within it.
	viewFor = time.Second
	// maxViews bounds the views kept.
	maxViews = 16
)

// views shares the encoded answers of heavy reads (a lab, its links)
// between the requests that ask for them until the next write: a thousand
// reads of a 1000-node lab cost one database read and one encoding while
// nothing changes, and concurrent ones wait for the same.
type views struct {
	version atomic.Uint64 // moves on every write the controller makes or serves

	mu sync.Mutex
	// mu guards the following.
	entries map[string]*view
}

// view is one read: ready closes once status, body and err are set.
type view struct {
	version uint64
	at      time.Time
	ready   chan struct{}
	status  int
	body    json.RawMessage
	err     error
}

// changed says the state may have changed: later reads read again.
func (v *views) changed() { v.version.Add(1) }

// get returns the encoded answer to key, reading it with load unless a
// read of the current version is at hand or under way.
func (v *views) get(key string, load func() (int, any, error)) (int, any, error) {
	version := v.version.Load()
	v.mu.Lock()
	e := v.entries[key]
	if e == nil || e.version != version || time.Since(e.at) > viewFor {
		if len(v.entries) >= maxViews {
			clear(v.entries)
		}
		e = &view{version: version, at: time.Now(), ready: make(chan struct{})}
		v.entries[key] = e
		v.mu.Unlock()
		status, body, err := load()
		if err == nil {
			e.body, err = json.Marshal(body)
		}
		e.status, e.err = status, err
		close(e.ready)
		if err != nil { // errors are read again
			v.mu.Lock()
			if v.entries[key] == e {
				delete(v.entries, key)
			}
			v.mu.Unlock()
		}
		return e.status, e.body, e.err
	}
	v.mu.Unlock()
	<-e.ready
	return e.status, e.body, e.err
}

// versioned moves the views' version around every request that may write.
func (v *views) versioned(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		v.changed()
		defer v.changed() // after: a read that began meanwhile is not reused
		next.ServeHTTP(w, r)
	})
}
