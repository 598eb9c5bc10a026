package controller

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/wire"
)

// The web view (issue #15): pages under /ui/ on the API's listener, behind
// the API token. A login form puts the token in an HttpOnly, SameSite=Strict
// cookie; a bearer header works as well. The pages are static files
// embedded in the binary (no CDN: it works offline); their data comes from
// one server-sent event stream per page, which sends a view whenever it
// differs from the last one sent.
//
// Design notes: the stream polls the store rather than hooking every
// writer of states (rounds, deploys, heartbeats): the store is the one
// place they all meet, a read every half second per open page is cheap,
// and a page shows what the REST API would answer at that moment.

// webAssets are the pages, script and style sheet; embedding needs a
// package-level variable.
//
//go:embed web
var webAssets embed.FS

// webCookie holds the API token in the browser.
const webCookie = "netloom_token"

// Timing of the event stream: how often it reads the store, and how often
// it sends a comment so that proxies keep an idle stream open.
const (
	webPoll      = 500 * time.Millisecond
	webHeartbeat = 15 * time.Second
)

var loginPage = template.Must(template.ParseFS(webAssets, "web/login.html"))

// webOverview is what the lab list shows: every lab with its progress, and
// every host.
type webOverview struct {
	Labs  []webLab        `json:"labs"`
	Hosts []wire.HostView `json:"hosts"`
}

type webLab struct {
	wire.Lab
	Progress wire.LabProgress `json:"progress"`
}

// webRoutes adds the web view to mux.
func (c *Controller) webRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("POST /ui/login", c.webLogin)
	mux.HandleFunc("POST /ui/logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: webCookie, Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	c.webHandle(mux, "GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		webPage(w, "web/index.html")
	})
	c.webHandle(mux, "GET /ui/lab/{lab}", func(w http.ResponseWriter, r *http.Request) {
		webPage(w, "web/lab.html")
	})
	c.webHandle(mux, "GET /ui/static/{file}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, webAssets, "web/static/"+r.PathValue("file"))
	})
	c.webHandle(mux, "GET /ui/events", c.webEvents)
	// Anything else under /ui/ is refused like a page without the token,
	// so the login form never tells what exists.
	c.webHandle(mux, "/ui/", http.NotFound)
}

// webHandle registers h behind the API token: without it, the answer is
// 401 with the login form.
func (c *Controller) webHandle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !c.webAuthorized(r) {
			c.webRefuse(w, r, "")
			return
		}
		h(w, r)
	})
}

// webAuthorized reports whether r carries the API token or the read-only
// one (the web view only reads), in the cookie or as a bearer header.
func (c *Controller) webAuthorized(r *http.Request) bool {
	if ck, err := r.Cookie(webCookie); err == nil && c.readToken(ck.Value) {
		return true
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && c.readToken(bearer)
}

// readToken reports, in constant time, whether token may read: the API
// token or the read-only one.
func (c *Controller) readToken(token string) bool {
	api := subtle.ConstantTimeCompare([]byte(token), []byte(c.cfg.APIToken))
	read := 0
	if c.cfg.ReadToken != "" {
		read = subtle.ConstantTimeCompare([]byte(token), []byte(c.cfg.ReadToken))
	}
	return api|read == 1
}

// webRefuse answers 401 with the login form, which comes back to the page
// asked for. A wrong token is logged; a page asked for before login is
// not.
func (c *Controller) webRefuse(w http.ResponseWriter, r *http.Request, problem string) {
	if problem != "" {
		c.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", http.StatusUnauthorized, "err", errUnauthorized)
	}
	next := r.URL.EscapedPath()
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	var b bytes.Buffer
	if err := loginPage.Execute(&b, map[string]string{"Next": safeNext(next), "Problem": problem}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	webHeaders(w, "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(b.Bytes())
}

// webLogin checks the token of the login form; a right one goes into the
// cookie and the browser back to the page it asked for.
func (c *Controller) webLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	token := r.PostFormValue("token")
	if !c.readToken(token) {
		c.webRefuse(w, r, "wrong token")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: webCookie, Value: token, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// safeNext keeps a redirect after login on the web view's pages, never
// another site.
func safeNext(next string) string {
	if lab, ok := strings.CutPrefix(next, "/ui/lab/"); ok && lab != "" && !strings.ContainsAny(lab, "/\\") {
		return next
	}
	return "/ui/"
}

// webPage serves one of the embedded pages.
func webPage(w http.ResponseWriter, name string) {
	data, err := webAssets.ReadFile(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	webHeaders(w, "text/html; charset=utf-8")
	_, _ = w.Write(data)
}

// webHeaders keeps a page to its own script and style, and out of frames.
func webHeaders(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}

// webEvents streams a view as server-sent events: with ?lab=NAME, the
// lab's (event "lab"; event "missing" while there is no such lab), else
// the overview (event "overview"). A view is sent when it differs from the
// last one sent; the stream ends when the client goes or the controller
// shuts down.
func (c *Controller) webEvents(w http.ResponseWriter, r *http.Request) {
	lab := r.URL.Query().Get("lab")
	rc := http.NewResponseController(w)
	// A stream outlives any write deadline the server may set.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		c.log.Warn("event stream: clear write deadline", "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	log := c.log.With("lab", lab)
	poll := time.NewTicker(webPoll)
	defer poll.Stop()
	beat := time.NewTicker(webHeartbeat)
	defer beat.Stop()
	var last []byte
	var lastErr string
	for {
		event, data, err := c.webView(r, lab)
		switch {
		case err != nil:
			// Said once, then retried: a store that does not answer now
			// may answer at the next tick.
			if err.Error() != lastErr {
				log.Warn("event stream: read view", "err", err)
				data, _ = json.Marshal(map[string]string{"error": err.Error()})
				if _, werr := fmt.Fprintf(w, "event: failure\ndata: %s\n\n", data); werr != nil {
					return
				}
				lastErr = err.Error()
				last = nil
			}
		case !bytes.Equal(data, last):
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
				return
			}
			last, lastErr = data, ""
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.webDone:
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case <-poll.C:
		}
	}
}

// webView reads the view a stream sends, as its event name and JSON.
func (c *Controller) webView(r *http.Request, lab string) (string, []byte, error) {
	ctx := r.Context()
	if lab != "" {
		v, err := c.store.LabView(ctx, lab)
		if errors.Is(err, store.ErrNotFound) {
			data, _ := json.Marshal(map[string]string{"lab": lab})
			return "missing", data, nil
		}
		if err != nil {
			return "", nil, err
		}
		data, err := json.Marshal(v)
		return "lab", data, err
	}
	labs, err := c.store.Labs(ctx)
	if err != nil {
		return "", nil, err
	}
	hosts, err := c.store.Hosts(ctx)
	if err != nil {
		return "", nil, err
	}
	o := webOverview{Labs: []webLab{}, Hosts: []wire.HostView{}}
	for _, l := range labs {
		v, err := c.store.LabView(ctx, l.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the list was read
		}
		if err != nil {
			return "", nil, err
		}
		o.Labs = append(o.Labs, webLab{Lab: l, Progress: v.Progress})
	}
	for _, h := range hosts {
		o.Hosts = append(o.Hosts, c.hostView(h))
	}
	data, err := json.Marshal(o)
	return "overview", data, err
}
