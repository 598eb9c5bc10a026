package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

var (
	errPathTooLong = errors.New("request path or query too long")
	errOverloaded  = errors.New("controller overloaded: retry later")
)

const (
	// maxPath bounds a request's path and query: no name the API takes
	// comes near it, and a longer one would reach the database and the
	// logs whole.
	maxPath = 2048
	// logMax bounds a path or an error as logged.
	logMax = 200
	// queueWait is how long a request waits for a slot before it is turned
	// away: a burst waits, a sustained overload is told to come back.
	queueWait = time.Second
	// failureEvery is how often the same failure of one client on one
	// route is logged; the ones in between are counted.
	failureEvery = 10 * time.Second
	// maxFailureKeys bounds the failures remembered; past it they are
	// forgotten at once, which only logs more.
	maxFailureKeys = 1024
)

// guard turns away, before any routing or authentication, requests whose
// path or query is too long.
func (c *Controller) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > maxPath || len(r.URL.RawQuery) > maxPath {
			c.respond(w, r, 0, nil, fmt.Errorf("%w: %d bytes, at most %d", errPathTooLong, max(len(r.URL.Path), len(r.URL.RawQuery)), maxPath))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admit takes one of the MaxRequests slots, waiting at most queueWait;
// the caller calls release when its request is done.
func (c *Controller) admit(ctx context.Context) (release func(), err error) {
	release = func() { <-c.slots }
	select {
	case c.slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(queueWait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, errOverloaded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// clip shortens s for a log line, saying how long it was.
func clip(s string) string {
	if len(s) <= logMax {
		return s
	}
	cut := logMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…[%d bytes]", s[:cut], len(s))
}

// failureLog logs failed requests, each client's failures on one route at
// most once per failureEvery, with how many it left out.
type failureLog struct {
	mu sync.Mutex
	// mu guards the following.
	seen map[failureKey]*failureCount
}

type failureKey struct{ client, route string }

type failureCount struct {
	at     time.Time // of the last one logged
	missed int       // left out since
}

// log logs a failed request, unless the same client failed on the same
// route less than failureEvery ago.
func (f *failureLog) log(log *slog.Logger, r *http.Request, level slog.Level, status int, err error) {
	client, _, splitErr := net.SplitHostPort(r.RemoteAddr)
	if splitErr != nil {
		client = r.RemoteAddr
	}
	route := r.Pattern // the route, not the path: one per endpoint
	if route == "" {
		route = r.Method + " (unrouted)"
	}
	k := failureKey{client, route}
	now := time.Now()
	f.mu.Lock()
	fc := f.seen[k]
	if fc != nil && now.Sub(fc.at) < failureEvery {
		fc.missed++
		f.mu.Unlock()
		return
	}
	if len(f.seen) >= maxFailureKeys {
		clear(f.seen)
	}
	missed := 0
	if fc != nil {
		missed = fc.missed
	}
	f.seen[k] = &failureCount{at: now}
	f.mu.Unlock()
	args := []any{"method", r.Method, "path", clip(r.URL.Path), "status", status, "client", client, "err", clip(err.Error())}
	if missed > 0 {
		args = append(args, "like_before", missed)
	}
	log.Log(r.Context(), level, "request failed", args...)
}
